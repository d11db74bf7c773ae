// Reading quill's environment variables (device selection, benchmark tunables, A/B switches): one form
// for every host file. An empty value reads as unset.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

namespace quill::host {

// The variable's value, or "" when unset.
inline std::string env_string(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Whether it is set to exactly `value`.
inline bool env_is(const char* name, std::string_view value) {
  const char* v = std::getenv(name);
  return v && std::string_view(v) == value;
}

// Its value as an integer (atoi: leading digits, else 0), or `fallback` when unset or empty.
inline int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

}  // namespace quill::host
