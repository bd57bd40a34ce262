#include "core/config.h"

#include <toml++/toml.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <sstream>

extern char** environ;

namespace tally {

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

std::string Config::EnvName(std::string_view key) {
  std::string name = "TALLY_";
  for (char c : key) {
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

namespace {

// Flattens a TOML table into "a.b" keys with scalar values rendered as text.
Status Flatten(const toml::table& table, const std::string& prefix,
               std::map<std::string, std::string>* out) {
  for (const auto& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = node.as_table()) {
      TALLY_RETURN_IF_ERROR(Flatten(*sub, key, out));
    } else if (auto s = node.value<std::string>(); s && node.is_string()) {
      (*out)[key] = *s;
    } else if (node.is_integer()) {
      (*out)[key] = std::to_string(node.as_integer()->get());
    } else if (node.is_floating_point()) {
      std::ostringstream os;
      os.precision(17);
      os << node.as_floating_point()->get();
      (*out)[key] = os.str();
    } else if (node.is_boolean()) {
      (*out)[key] = node.as_boolean()->get() ? "true" : "false";
    } else {
      return Status::InvalidArgument("key '" + key + "' must be a string, number or boolean");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Config> Config::Load(const std::string& path, const std::vector<ConfigKey>& keys,
                            const Environment& env) {
  Config cfg;
  for (const auto& k : keys) cfg.entries_[k.key] = Entry{k.default_value, "default"};
  if (!path.empty()) {
    toml::table parsed;
    try {
      parsed = toml::parse_file(path);
    } catch (const toml::parse_error& err) {
      std::ostringstream msg;
      msg << path << ":" << err.source().begin.line << ":" << err.source().begin.column << ": "
          << err.description();
      return Status::InvalidArgument(msg.str());
    }
    std::map<std::string, std::string> flat;
    TALLY_RETURN_IF_ERROR(Flatten(parsed, "", &flat).WithContext(path));
    for (auto& [key, value] : flat) {
      auto it = cfg.entries_.find(key);
      if (it == cfg.entries_.end()) {
        return Status::InvalidArgument(path + ": unknown setting '" + key + "'");
      }
      it->second = Entry{value, "file " + path};
    }
  }
  for (auto& [key, entry] : cfg.entries_) {
    auto it = env.find(EnvName(key));
    if (it != env.end()) entry = Entry{it->second, "env " + EnvName(key)};
  }
  return cfg;
}

void Config::Override(std::string_view key, std::string value, std::string source) {
  entries_[std::string(key)] = Entry{std::move(value), std::move(source)};
}

Result<const Config::Entry*> Config::Find(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return Status::NotFound("setting '" + std::string(key) + "' is not declared");
  return &it->second;
}

std::string Config::SourceOf(std::string_view key) const {
  auto e = Find(key);
  return e.ok() ? (*e)->source : "undeclared";
}

Result<int64_t> Config::Int(std::string_view key) const {
  TALLY_ASSIGN_OR_RETURN(const Entry* e, Find(key));
  int64_t v = 0;
  const char* end = e->value.data() + e->value.size();
  auto [p, ec] = std::from_chars(e->value.data(), end, v);
  if (ec != std::errc() || p != end) {
    return Status::InvalidArgument("setting " + std::string(key) + "='" + e->value + "' (from " +
                                   e->source + ") is not an integer");
  }
  return v;
}

Result<double> Config::Double(std::string_view key) const {
  TALLY_ASSIGN_OR_RETURN(const Entry* e, Find(key));
  char* end = nullptr;
  double v = std::strtod(e->value.c_str(), &end);
  if (e->value.empty() || end != e->value.c_str() + e->value.size() || !std::isfinite(v)) {
    return Status::InvalidArgument("setting " + std::string(key) + "='" + e->value + "' (from " +
                                   e->source + ") is not a number");
  }
  return v;
}

Result<std::string> Config::String(std::string_view key) const {
  TALLY_ASSIGN_OR_RETURN(const Entry* e, Find(key));
  return e->value;
}

Result<bool> Config::Bool(std::string_view key) const {
  TALLY_ASSIGN_OR_RETURN(const Entry* e, Find(key));
  if (e->value == "true" || e->value == "1") return true;
  if (e->value == "false" || e->value == "0") return false;
  return Status::InvalidArgument("setting " + std::string(key) + "='" + e->value + "' (from " +
                                 e->source + ") is not true or false");
}

}  // namespace tally
