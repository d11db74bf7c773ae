// C API: status codes and the per-thread last error, version, logging level, device listing and
// name lists (include/quill.h). The exception -> status mapping lives here.
#include <new>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/c_api_internal.hpp"
#include "engine/error.hpp"
#include "engine/log.hpp"
#include "engine/quant_scheme.hpp"
#include "engine/synthetic_model.hpp"
#include "host/device_info.hpp"

namespace quill::capi {
namespace {

thread_local std::string t_last_error;
thread_local std::string t_devices_json;

quill_status status_of(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return QUILL_ERR_INVALID_ARGUMENT;
    case ErrorKind::kFile:
      return QUILL_ERR_FILE;
    case ErrorKind::kFormat:
      return QUILL_ERR_FORMAT;
    case ErrorKind::kDevice:
      return QUILL_ERR_DEVICE;
    case ErrorKind::kOutOfMemory:
      return QUILL_ERR_OUT_OF_MEMORY;
    case ErrorKind::kContextFull:
      return QUILL_ERR_CONTEXT_FULL;
    case ErrorKind::kInternal:
      return QUILL_ERR_INTERNAL;
  }
  return QUILL_ERR_INTERNAL;
}

nlohmann::json device_json(const host::DeviceInfo& d) {
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

}  // namespace

quill_status set_error(quill_status status, const std::string& message) noexcept {
  try {
    t_last_error = message;
  } catch (...) {
    t_last_error.clear();  // no memory for the message: the status still tells
  }
  return status;
}

quill_status set_error(quill_status status, const char* message) noexcept {
  try {
    t_last_error = message;
  } catch (...) {
    t_last_error.clear();
  }
  return status;
}

quill_status set_error_from_current_exception() noexcept {
  try {
    try {
      throw;
    } catch (const Error& e) {
      return set_error(status_of(e.kind()), e.what());
    } catch (const Cancelled&) {
      return set_error(QUILL_ERR_CANCELLED, "cancelled by the progress callback");
    } catch (const std::bad_alloc&) {
      return set_error(QUILL_ERR_OUT_OF_MEMORY, "out of host memory");
    } catch (const std::exception& e) {
      return set_error(QUILL_ERR_INTERNAL, std::string("internal error: ") + e.what());
    } catch (...) {
      return set_error(QUILL_ERR_INTERNAL, "internal error: unknown exception");
    }
  } catch (...) {  // building the message failed (no memory): the status still tells
    t_last_error.clear();
    return QUILL_ERR_OUT_OF_MEMORY;
  }
}

bool check_not_null(const void* p, const char* function, const char* what) noexcept {
  if (p) return true;
  try {
    set_error(QUILL_ERR_INVALID_ARGUMENT, std::string(function) + ": " + what + " is NULL");
  } catch (...) {
    t_last_error.clear();
  }
  return false;
}

}  // namespace quill::capi

using namespace quill;

extern "C" {

QUILL_API const char* quill_status_string(quill_status status) {
  switch (status) {
    case QUILL_OK:
      return "ok";
    case QUILL_ERR_INVALID_ARGUMENT:
      return "invalid argument";
    case QUILL_ERR_FILE:
      return "file error";
    case QUILL_ERR_FORMAT:
      return "format error";
    case QUILL_ERR_DEVICE:
      return "device error";
    case QUILL_ERR_OUT_OF_MEMORY:
      return "out of memory";
    case QUILL_ERR_CONTEXT_FULL:
      return "context full";
    case QUILL_ERR_INTERNAL:
      return "internal error";
    case QUILL_ERR_CANCELLED:
      return "cancelled";
  }
  return "unknown status";
}

QUILL_API const char* quill_last_error(void) { return capi::t_last_error.c_str(); }

QUILL_API const char* quill_version(void) { return QUILL_VERSION_STRING; }

QUILL_API void quill_log_set_level(quill_log_level level) {
  if (level < QUILL_LOG_ERROR) level = QUILL_LOG_ERROR;
  if (level > QUILL_LOG_DEBUG) level = QUILL_LOG_DEBUG;
  set_log_level(LogLevel(int(level)));
}

QUILL_API quill_log_level quill_log_get_level(void) { return quill_log_level(int(log_level())); }

QUILL_API int32_t quill_device_count(void) {
  int32_t count = -1;
  capi::guard([&] {
    count = int32_t(host::enumerate_devices().size());
    return QUILL_OK;
  });
  return count;
}

QUILL_API const char* quill_devices_json(const char* spec) {
  const quill_status status = capi::guard([&] {
    const auto devices = host::enumerate_devices();
    const std::string resolved = host::device_spec_or_env(spec ? spec : "");
    const host::DeviceInfo& chosen = host::choose_device(devices, resolved);
    nlohmann::json out = {{"devices", nlohmann::json::array()}, {"selected", chosen.index}, {"spec", resolved}};
    for (const auto& d : devices) out["devices"].push_back(capi::device_json(d));
    capi::t_devices_json = out.dump(2);
    return QUILL_OK;
  });
  return status == QUILL_OK ? capi::t_devices_json.c_str() : nullptr;
}

QUILL_API const char* quill_quant_names(void) {
  static const std::string names = [] {
    try {
      return quant_scheme_names();
    } catch (...) {
      return std::string();
    }
  }();
  return names.c_str();
}

QUILL_API const char* quill_quant_scheme_name(const char* name) {
  if (!capi::check_not_null(name, "quill_quant_scheme_name", "name")) return nullptr;
  const char* canonical = nullptr;
  capi::guard([&] {
    canonical = scheme_name(parse_quant_scheme(name)).data();  // names are string literals
    return QUILL_OK;
  });
  return canonical;
}

QUILL_API const char* quill_synthetic_names(void) {
  static const std::string names = [] {
    std::string out;
    try {
      for (auto n : synthetic_preset_names()) out += (out.empty() ? "" : " ") + std::string(n);
    } catch (...) {
    }
    return out;
  }();
  return names.c_str();
}

}  // extern "C"
