// Program building and the in-memory + on-disk program cache (see program.hpp).
#include "host/program.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "engine/log.hpp"
#include "host/opencl.hpp"

namespace quill::host {
namespace {

constexpr char kMagic[8] = {'Q', 'U', 'I', 'L', 'L', 'C', 'L', 'B'};

struct BinaryHeader {
  char magic[8];
  uint64_t payload_bytes;
  uint64_t payload_hash;
};

std::string hash_key(const DeviceInfo& info, const std::string& source, const std::string& options) {
  std::string material = source;
  for (const std::string* part : {&options, &info.name, &info.driver_version, &info.platform_version}) {
    material.push_back('\0');
    material += *part;
  }
  const XXH128_hash_t h = XXH3_128bits(material.data(), material.size());
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

std::string build_log(cl_program program, cl_device_id device) {
  size_t size = 0;
  clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &size);
  std::string log(size, '\0');
  if (size) clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, size, log.data(), nullptr);
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  return log;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Program::~Program() {
  if (program_) clReleaseProgram(program_);
}

ProgramCache::ProgramCache(const DeviceInfo& info, ClContext context) : info_(info), context_(context) {}

std::filesystem::path ProgramCache::cache_dir() {
  if (const char* dir = std::getenv("QUILL_CACHE_DIR"); dir && *dir) {
    if (!std::strcmp(dir, "off")) return {};
    return dir;
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::filesystem::path(xdg) / "quill" / "kernels";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".cache" / "quill" / "kernels";
  return {};
}

ProgramCacheStats ProgramCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

std::shared_ptr<const Program> ProgramCache::get(const std::string& label, const std::string& source,
                                                 const std::string& options) {
  const std::string key = hash_key(info_, source, options);
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto it = memory_.find(key); it != memory_.end()) {
    ++stats_.memory_hits;
    return it->second;
  }
  const std::filesystem::path dir = cache_dir();
  const std::filesystem::path path = dir.empty() ? dir : dir / (key + ".clbin");
  std::shared_ptr<const Program> program;
  if (!path.empty()) {
    const std::string file = read_file(path);
    if (!file.empty()) {
      BinaryHeader header{};
      bool ok = file.size() >= sizeof header;
      if (ok) std::memcpy(&header, file.data(), sizeof header);
      ok = ok && !std::memcmp(header.magic, kMagic, sizeof kMagic) &&
           header.payload_bytes == file.size() - sizeof header &&
           header.payload_hash == XXH3_64bits(file.data() + sizeof header, header.payload_bytes);
      if (ok) program = build_from_binary(label, file.substr(sizeof header), options);
      if (program) {
        ++stats_.disk_hits;
      } else {
        ++stats_.corrupt_entries;
        log_debug("kernel cache entry {} is corrupt or stale; rebuilding", path.string());
      }
    }
  }
  if (!program) {
    program = build_from_source(label, source, options);
    ++stats_.builds;
    if (!path.empty()) store_binary(path, *program);
  }
  memory_.emplace(key, program);
  return program;
}

std::shared_ptr<const Program> ProgramCache::build_from_binary(const std::string& label, const std::string& binary,
                                                               const std::string& options) {
  const size_t size = binary.size();
  const auto* bytes = reinterpret_cast<const unsigned char*>(binary.data());
  cl_int binary_status = CL_SUCCESS;
  cl_int status = CL_SUCCESS;
  cl_device_id device = info_.device;
  cl_program program = clCreateProgramWithBinary(context_, 1, &device, &size, &bytes, &binary_status, &status);
  if (status != CL_SUCCESS || binary_status != CL_SUCCESS) {
    if (program) clReleaseProgram(program);
    return nullptr;
  }
  if (clBuildProgram(program, 1, &device, options.c_str(), nullptr, nullptr) != CL_SUCCESS) {
    clReleaseProgram(program);
    return nullptr;
  }
  return std::make_shared<Program>(program, label);
}

std::shared_ptr<const Program> ProgramCache::build_from_source(const std::string& label, const std::string& source,
                                                               const std::string& options) {
  const char* text = source.c_str();
  const size_t length = source.size();
  cl_int status = CL_SUCCESS;
  cl_program program = clCreateProgramWithSource(context_, 1, &text, &length, &status);
  check_cl(status, "clCreateProgramWithSource");
  cl_device_id device = info_.device;
  status = clBuildProgram(program, 1, &device, options.c_str(), nullptr, nullptr);
  if (status != CL_SUCCESS) {
    const std::string log = build_log(program, device);
    clReleaseProgram(program);
    fail(ErrorKind::kDevice, "building kernel program {} for {} failed ({}), options '{}'; build log:\n{}", label,
         info_.name, cl_error_name(status), options, log);
  }
  if (options.find("-cl-nv-verbose") != std::string::npos)
    log_info("build log of {} ({}):\n{}", label, options, build_log(program, device));
  return std::make_shared<Program>(program, label);
}

void ProgramCache::store_binary(const std::filesystem::path& path, const Program& program) {
  size_t size = 0;
  cl_program handle = program.handle();
  if (clGetProgramInfo(handle, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, nullptr) != CL_SUCCESS || size == 0) return;
  std::string binary(size, '\0');
  unsigned char* ptr = reinterpret_cast<unsigned char*>(binary.data());
  if (clGetProgramInfo(handle, CL_PROGRAM_BINARIES, sizeof ptr, &ptr, nullptr) != CL_SUCCESS) return;
  BinaryHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.payload_bytes = size;
  header.payload_hash = XXH3_64bits(binary.data(), size);
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  // Atomic: write a uniquely named temporary, then rename over the final name.
  static std::atomic<uint64_t> counter{0};
  const auto tmp = path.string() + fmt::format(".tmp{}.{}", ::getpid(), counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;
    out.write(reinterpret_cast<const char*>(&header), sizeof header);
    out.write(binary.data(), std::streamsize(size));
    if (!out) {
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

}  // namespace quill::host
