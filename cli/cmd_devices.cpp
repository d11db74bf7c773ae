// `quill devices`: every OpenCL platform and device, their capabilities, and which one quill would
// choose (from --device, $QUILL_DEVICE, or the default rule).
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "host/device_info.hpp"

namespace quill::cli {
namespace {

struct DevicesOptions {
  std::string device;
  bool json = false;
};

nlohmann::json to_json(const host::DeviceInfo& d) {
  return {{"index", d.index},
          {"platform", d.platform_name},
          {"platform_version", d.platform_version},
          {"name", d.name},
          {"vendor", d.vendor},
          {"type", d.type_name()},
          {"device_version", d.device_version},
          {"driver_version", d.driver_version},
          {"opencl_c_version", d.opencl_c_version},
          {"fp16", d.fp16},
          {"inline_ptx", d.inline_ptx},
          {"sm_version", d.sm_version},
          {"compute_units", d.compute_units},
          {"local_mem_bytes", d.local_mem_bytes},
          {"max_alloc_bytes", d.max_alloc_bytes},
          {"global_mem_bytes", d.global_mem_bytes},
          {"max_work_group_size", d.max_work_group_size},
          {"build_options", host::capability_build_options(d)}};
}

int run_devices(const DevicesOptions& options) {
  const auto devices = host::enumerate_devices();
  const std::string spec = host::device_spec_or_env(options.device);
  const host::DeviceInfo& chosen = host::choose_device(devices, spec);
  if (options.json) {
    nlohmann::json out = {{"devices", nlohmann::json::array()}, {"selected", chosen.index}, {"spec", spec}};
    for (const auto& d : devices) out["devices"].push_back(to_json(d));
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  for (const auto& d : devices) {
    std::printf("%s[%d] %s / %s (%s)\n", d.index == chosen.index ? "*" : " ", d.index, d.platform_name.c_str(),
                d.name.c_str(), d.type_name().c_str());
    std::printf("      %s, driver %s, %s\n", d.device_version.c_str(), d.driver_version.c_str(),
                d.opencl_c_version.c_str());
    std::printf("      %u compute units, %.1f GiB global, %.2f GiB max alloc, %llu KiB local, max work-group %llu\n",
                d.compute_units, d.global_mem_bytes / kGiB, d.max_alloc_bytes / kGiB,
                (unsigned long long)(d.local_mem_bytes / 1024), (unsigned long long)d.max_work_group_size);
    std::printf("      fp16 %s, inline PTX %s%s, kernel path: %s\n", d.fp16 ? "yes" : "no", d.inline_ptx ? "yes" : "no",
                d.sm_version ? fmt::format(" (sm_{})", d.sm_version).c_str() : "",
                d.inline_ptx ? "nvidia-ptx" : "portable");
  }
  std::printf("selected: [%d] %s%s\n", chosen.index, chosen.name.c_str(),
              spec.empty() ? " (default: first GPU, else first CPU)" : fmt::format(" (--device/QUILL_DEVICE '{}')", spec).c_str());
  return 0;
}

}  // namespace

Command add_devices_command(CLI::App& app) {
  auto options = std::make_shared<DevicesOptions>();
  CLI::App* sub = app.add_subcommand("devices", "List OpenCL platforms and devices, their capabilities, and the choice");
  sub->add_option("-d,--device", options->device, "Device to select: index, gpu, cpu, or part of a name (env QUILL_DEVICE)");
  sub->add_flag("--json", options->json, "Print one JSON object on stdout");
  return [options] { return run_devices(*options); };
}

}  // namespace quill::cli
