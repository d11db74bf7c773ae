// `quill devices`: every OpenCL platform and device, their capabilities, and which one quill would
// choose (from --device, $QUILL_DEVICE, or the default rule). Uses only the public C API
// (quill_devices_json), formatting its JSON document for people unless --json is given.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.hpp"
#include "cli/util.hpp"
#include "quill.h"

namespace quill::cli {
namespace {

struct DevicesOptions {
  std::string device;
  bool json = false;
};

int run_devices(const DevicesOptions& options) {
  const char* text = quill_devices_json(options.device.c_str());
  if (!text) {
    print_error(quill_last_error());
    return 1;
  }
  if (options.json) {
    std::printf("%s\n", text);
    return 0;
  }
  const nlohmann::json doc = nlohmann::json::parse(text);
  const int selected = doc["selected"].get<int>();
  const std::string spec = doc["spec"].get<std::string>();
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  std::string selected_name;
  for (const auto& d : doc["devices"]) {
    const int index = d["index"].get<int>();
    const std::string name = d["name"].get<std::string>();
    if (index == selected) selected_name = name;
    std::printf("%s[%d] %s / %s (%s)\n", index == selected ? "*" : " ", index, d["platform"].get<std::string>().c_str(),
                name.c_str(), d["type"].get<std::string>().c_str());
    std::printf("      %s, driver %s, %s\n", d["device_version"].get<std::string>().c_str(),
                d["driver_version"].get<std::string>().c_str(), d["opencl_c_version"].get<std::string>().c_str());
    std::printf("      %u compute units, %.1f GiB global, %.2f GiB max alloc, %llu KiB local, max work-group %llu\n",
                d["compute_units"].get<unsigned>(), d["global_mem_bytes"].get<double>() / kGiB,
                d["max_alloc_bytes"].get<double>() / kGiB,
                (unsigned long long)(d["local_mem_bytes"].get<uint64_t>() / 1024),
                (unsigned long long)d["max_work_group_size"].get<uint64_t>());
    const bool ptx = d["inline_ptx"].get<bool>();
    const int sm = d["sm_version"].get<int>();
    const std::string sm_text = sm ? " (sm_" + std::to_string(sm) + ")" : "";
    std::printf("      fp16 %s, inline PTX %s%s, kernel path: %s\n", d["fp16"].get<bool>() ? "yes" : "no",
                ptx ? "yes" : "no", sm_text.c_str(), ptx ? "nvidia-ptx" : "portable");
  }
  const std::string how =
      spec.empty() ? " (default: first GPU, else first CPU)" : " (--device/QUILL_DEVICE '" + spec + "')";
  std::printf("selected: [%d] %s%s\n", selected, selected_name.c_str(), how.c_str());
  return 0;
}

}  // namespace

Command add_devices_command(CLI::App& app) {
  auto options = std::make_shared<DevicesOptions>();
  CLI::App* sub =
      app.add_subcommand("devices", "List OpenCL platforms and devices, their capabilities, and the choice");
  sub->add_option("-d,--device", options->device,
                  "Device to select: index, gpu, cpu, or part of a name (env QUILL_DEVICE)");
  sub->add_flag("--json", options->json, "Print one JSON object on stdout");
  return [options] { return run_devices(*options); };
}

}  // namespace quill::cli
