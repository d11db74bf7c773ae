// Program: a built OpenCL program. ProgramCache: builds programs from kernels/*.cl with the
// device's capability flags, keeps them in memory, and keeps their binaries on disk keyed by a
// hash of (source, options, device name, driver version), written atomically; a corrupt entry is
// ignored and rebuilt. A failed build throws quill::Error(kDevice) carrying the compiler's log.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "host/cl_handles.hpp"
#include "host/device_info.hpp"

namespace quill::host {

class Program {
 public:
  Program(ClProgram program, std::string name) : program_(program), name_(std::move(name)) {}
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  ClProgram handle() const { return program_; }
  const std::string& name() const { return name_; }

 private:
  ClProgram program_;
  std::string name_;
};

struct ProgramCacheStats {
  uint64_t memory_hits = 0;
  uint64_t disk_hits = 0;
  uint64_t builds = 0;            // compiled from source
  uint64_t corrupt_entries = 0;   // disk entries rejected and rebuilt
};

class ProgramCache {
 public:
  ProgramCache(const DeviceInfo& info, ClContext context);

  // Builds (or finds) the program for the full source text; `label` names it in errors and logs.
  std::shared_ptr<const Program> get(const std::string& label, const std::string& source, const std::string& options);

  ProgramCacheStats stats() const;
  // The folder of the on-disk cache: $QUILL_CACHE_DIR, else $XDG_CACHE_HOME/quill/kernels, else
  // ~/.cache/quill/kernels; empty when disabled ($QUILL_CACHE_DIR=off).
  static std::filesystem::path cache_dir();

 private:
  std::shared_ptr<const Program> build_from_binary(const std::string& label, const std::string& binary,
                                                   const std::string& options);
  std::shared_ptr<const Program> build_from_source(const std::string& label, const std::string& source,
                                                   const std::string& options);
  void store_binary(const std::filesystem::path& path, const Program& program);

  const DeviceInfo& info_;
  ClContext context_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Program>> memory_;
  ProgramCacheStats stats_;
};

}  // namespace quill::host
