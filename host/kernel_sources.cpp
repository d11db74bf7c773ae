// Kernel source lookup and #include expansion (see kernel_sources.hpp).
#include "host/kernel_sources.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/error.hpp"

namespace quill::host {
namespace {

std::string raw_source(std::string_view name) {
  if (const char* dir = std::getenv("QUILL_KERNEL_DIR"); dir && *dir) {
    const auto path = std::filesystem::path(dir) / std::string(name);
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(ErrorKind::kDevice, "kernel source {} not found in QUILL_KERNEL_DIR={}", name, dir);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }
  for (const auto& source : embedded_kernel_sources())
    if (source.name == name) return std::string(source.text);
  fail(ErrorKind::kDevice, "no embedded kernel source named {}", name);
}

void expand(std::string_view name, std::set<std::string>& seen, std::string& out) {
  if (!seen.insert(std::string(name)).second) return;
  std::istringstream in(raw_source(name));
  std::string line;
  int line_no = 0;
  out += "#line 1\n";
  while (std::getline(in, line)) {
    ++line_no;
    const auto first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line.compare(first, 8, "#include") == 0) {
      const auto open = line.find('"');
      const auto close = line.rfind('"');
      if (open != std::string::npos && close > open) {
        expand(line.substr(open + 1, close - open - 1), seen, out);
        out += "#line " + std::to_string(line_no + 1) + "\n";
        continue;
      }
    }
    out += line;
    out += '\n';
  }
}

}  // namespace

std::string load_kernel_source(std::string_view name) {
  std::set<std::string> seen;
  std::string out;
  expand(name, seen, out);
  return out;
}

}  // namespace quill::host
