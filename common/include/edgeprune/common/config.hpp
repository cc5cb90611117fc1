#pragma once
// Configuration with a schema: every key has a type, a default and an optional constraint.
// Sources, later ones win: defaults < TOML file < environment (EDGEPRUNE_<SECTION>_<KEY>) <
// command-line overrides ("section.key=value"). Load() validates everything and reports every
// problem at once, each naming its key.
//
// Thread-safety: a loaded Config is immutable and safe to share.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune {

enum class ConfigType { kString, kInt, kDouble, kBool };

using ConfigValue = std::variant<std::string, std::int64_t, double, bool>;

struct ConfigKey {
  std::string name;  // dotted: "server.listen_port"
  ConfigType type = ConfigType::kString;
  ConfigValue default_value;
  std::string help;
  // Returns a problem description when the value is not acceptable.
  std::function<std::optional<std::string>(const ConfigValue&)> check;
};

class ConfigSchema {
 public:
  ConfigSchema& Add(ConfigKey key);
  ConfigSchema& String(std::string name, std::string def, std::string help);
  ConfigSchema& Int(std::string name, std::int64_t def, std::int64_t min, std::int64_t max,
                    std::string help);
  ConfigSchema& Double(std::string name, double def, double min, double max, std::string help);
  ConfigSchema& Bool(std::string name, bool def, std::string help);
  const std::vector<ConfigKey>& keys() const { return keys_; }
  const ConfigKey* Find(const std::string& name) const;
  // Markdown table of every key, for docs and --help.
  std::string Describe() const;

 private:
  std::vector<ConfigKey> keys_;
};

class Config {
 public:
  std::string GetString(const std::string& key) const;
  std::int64_t GetInt(const std::string& key) const;
  double GetDouble(const std::string& key) const;
  bool GetBool(const std::string& key) const;
  // Where each value came from ("default", "file", "env", "flag"), for diagnostics.
  std::string SourceOf(const std::string& key) const;

  // Loads and validates. toml_path may be empty. overrides are "section.key=value" strings.
  // env_prefix defaults to "EDGEPRUNE"; pass "" to ignore the environment.
  static Result<Config> Load(const ConfigSchema& schema, const std::string& toml_path,
                             const std::vector<std::string>& overrides,
                             const std::string& env_prefix = "EDGEPRUNE");

 private:
  std::map<std::string, ConfigValue> values_;
  std::map<std::string, std::string> sources_;
};

}  // namespace edgeprune
