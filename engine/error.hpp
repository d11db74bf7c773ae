// quill's one exception type: a category (mapped to a C API status code) and a message that names
// what failed (the GGUF field and offset, the OpenCL call and its error, the build log).
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace quill {

enum class ErrorKind {
  kInvalidArgument,  // bad parameter from the caller (scheme name, token id, shape)
  kFile,             // missing path, directory, unreadable file
  kFormat,           // malformed or unsupported model file contents
  kDevice,           // OpenCL error, missing platform, kernel build failure
  kOutOfMemory,      // host or device allocation refused
  kContextFull,      // the session's context length is exhausted
  kInternal,         // a bug in quill
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

template <typename... Args>
[[noreturn]] void fail(ErrorKind kind, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(kind, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace quill
