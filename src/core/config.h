#pragma once
// Configuration: a TOML file, overridden by environment variables, overridden by command-line
// flags. Keys are "section.name" (e.g. "generate.subscribers"); the environment variable for a
// key is TALLY_ followed by the key in upper case with dots as underscores
// (TALLY_GENERATE_SUBSCRIBERS). Only keys the program declares are accepted, so a typo in the
// file is an error that names the key instead of a setting silently ignored.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace tally {

//! A snapshot of environment variables; passed in rather than read globally so tests can set it.
using Environment = std::map<std::string, std::string>;
//! The current process environment.
Environment ProcessEnvironment();

//! One declared setting: its key, a one-line description and its default as text.
struct ConfigKey {
  std::string key;
  std::string default_value;
  std::string help;
};

//! Resolved settings with the source of each value, for error messages.
class Config {
 public:
  //! Reads `path` (empty for none) and applies environment overrides for the declared keys.
  //! Unknown keys in the file, and values TOML cannot represent as scalars, are errors.
  static Result<Config> Load(const std::string& path, const std::vector<ConfigKey>& keys,
                             const Environment& env);

  //! The environment variable name that overrides `key`.
  static std::string EnvName(std::string_view key);

  Result<int64_t> Int(std::string_view key) const;
  Result<double> Double(std::string_view key) const;
  Result<std::string> String(std::string_view key) const;
  Result<bool> Bool(std::string_view key) const;
  //! Where the value of `key` came from: "default", "file <path>" or "env TALLY_...".
  std::string SourceOf(std::string_view key) const;

  //! Sets a value from a command-line flag (highest precedence).
  void Override(std::string_view key, std::string value, std::string source);

 private:
  struct Entry {
    std::string value;
    std::string source;
  };
  Result<const Entry*> Find(std::string_view key) const;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace tally
