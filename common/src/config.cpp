#include "edgeprune/common/config.hpp"

#include <toml++/toml.h>

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <sstream>

namespace edgeprune {
namespace {

const char* TypeName(ConfigType t) {
  switch (t) {
    case ConfigType::kString: return "string";
    case ConfigType::kInt: return "integer";
    case ConfigType::kDouble: return "number";
    case ConfigType::kBool: return "boolean";
  }
  return "?";
}

// "a string", "an integer": for messages that read as sentences.
std::string WithArticle(ConfigType t) {
  return (t == ConfigType::kInt ? "an " : "a ") + std::string(TypeName(t));
}

std::string Render(const ConfigValue& v) {
  if (auto* s = std::get_if<std::string>(&v)) return "\"" + *s + "\"";
  if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) {
    std::ostringstream os;
    os << *d;
    return os.str();
  }
  return std::get<bool>(v) ? "true" : "false";
}

// Parses text (from env or a flag) as the key's type.
std::optional<ConfigValue> ParseText(ConfigType type, const std::string& text) {
  switch (type) {
    case ConfigType::kString: return ConfigValue(text);
    case ConfigType::kInt: {
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
      return ConfigValue(v);
    }
    case ConfigType::kDouble: {
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size()) return std::nullopt;
      return ConfigValue(v);
    }
    case ConfigType::kBool:
      if (text == "true" || text == "1" || text == "yes" || text == "on") return ConfigValue(true);
      if (text == "false" || text == "0" || text == "no" || text == "off") return ConfigValue(false);
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<ConfigValue> FromToml(ConfigType type, const toml::node& node) {
  switch (type) {
    case ConfigType::kString:
      if (auto v = node.value<std::string>(); v && node.is_string()) return ConfigValue(*v);
      return std::nullopt;
    case ConfigType::kInt:
      if (node.is_integer()) return ConfigValue(static_cast<std::int64_t>(*node.value<int64_t>()));
      return std::nullopt;
    case ConfigType::kDouble:
      if (node.is_floating_point() || node.is_integer()) return ConfigValue(*node.value<double>());
      return std::nullopt;
    case ConfigType::kBool:
      if (node.is_boolean()) return ConfigValue(*node.value<bool>());
      return std::nullopt;
  }
  return std::nullopt;
}

std::string EnvName(const std::string& prefix, const std::string& key) {
  std::string out = prefix + "_";
  for (char c : key) out += (c == '.') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Walks a TOML table collecting dotted leaf keys.
void Flatten(const toml::table& t, const std::string& prefix,
             std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (const auto& [k, node] : t) {
    std::string name = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const auto* sub = node.as_table()) {
      Flatten(*sub, name, out);
    } else {
      out.emplace_back(name, &node);
    }
  }
}

}  // namespace

ConfigSchema& ConfigSchema::Add(ConfigKey key) {
  keys_.push_back(std::move(key));
  return *this;
}

ConfigSchema& ConfigSchema::String(std::string name, std::string def, std::string help) {
  return Add({std::move(name), ConfigType::kString, ConfigValue(std::move(def)), std::move(help), {}});
}

ConfigSchema& ConfigSchema::Int(std::string name, std::int64_t def, std::int64_t min,
                                std::int64_t max, std::string help) {
  auto check = [min, max](const ConfigValue& v) -> std::optional<std::string> {
    auto i = std::get<std::int64_t>(v);
    if (i < min || i > max) {
      return "must be between " + std::to_string(min) + " and " + std::to_string(max) +
             ", got " + std::to_string(i);
    }
    return std::nullopt;
  };
  return Add({std::move(name), ConfigType::kInt, ConfigValue(def), std::move(help), check});
}

ConfigSchema& ConfigSchema::Double(std::string name, double def, double min, double max,
                                   std::string help) {
  auto check = [min, max](const ConfigValue& v) -> std::optional<std::string> {
    auto d = std::get<double>(v);
    if (!(d >= min && d <= max)) {
      return "must be between " + Render(min) + " and " + Render(max) + ", got " + Render(d);
    }
    return std::nullopt;
  };
  return Add({std::move(name), ConfigType::kDouble, ConfigValue(def), std::move(help), check});
}

ConfigSchema& ConfigSchema::Bool(std::string name, bool def, std::string help) {
  return Add({std::move(name), ConfigType::kBool, ConfigValue(def), std::move(help), {}});
}

const ConfigKey* ConfigSchema::Find(const std::string& name) const {
  for (const auto& k : keys_) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string ConfigSchema::Describe() const {
  std::ostringstream os;
  os << "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& k : keys_) {
    os << "| `" << k.name << "` | " << TypeName(k.type) << " | `" << Render(k.default_value)
       << "` | " << k.help << " |\n";
  }
  return os.str();
}

Result<Config> Config::Load(const ConfigSchema& schema, const std::string& toml_path,
                            const std::vector<std::string>& overrides,
                            const std::string& env_prefix) {
  Config cfg;
  std::vector<std::string> problems;
  for (const auto& k : schema.keys()) {
    cfg.values_[k.name] = k.default_value;
    cfg.sources_[k.name] = "default";
  }

  if (!toml_path.empty()) {
    try {
      toml::table table = toml::parse_file(toml_path);
      std::vector<std::pair<std::string, const toml::node*>> leaves;
      Flatten(table, "", leaves);
      for (const auto& [name, node] : leaves) {
        const ConfigKey* key = schema.Find(name);
        if (!key) {
          problems.push_back(name + ": unknown key in " + toml_path);
          continue;
        }
        auto v = FromToml(key->type, *node);
        if (!v) {
          problems.push_back(name + ": must be " + WithArticle(key->type) + " in " + toml_path);
          continue;
        }
        cfg.values_[name] = *v;
        cfg.sources_[name] = "file";
      }
    } catch (const toml::parse_error& e) {
      std::ostringstream os;
      os << toml_path << ": not valid TOML at line " << e.source().begin.line << ": "
         << e.description();
      problems.push_back(os.str());
    }
  }

  if (!env_prefix.empty()) {
    for (const auto& k : schema.keys()) {
      std::string env = EnvName(env_prefix, k.name);
      if (const char* text = std::getenv(env.c_str())) {
        auto v = ParseText(k.type, text);
        if (!v) {
          problems.push_back(k.name + ": environment " + env + "='" + text + "' is not " +
                             WithArticle(k.type));
          continue;
        }
        cfg.values_[k.name] = *v;
        cfg.sources_[k.name] = "env";
      }
    }
  }

  for (const auto& o : overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos) {
      problems.push_back("'" + o + "': an override must look like key=value");
      continue;
    }
    std::string name = o.substr(0, eq);
    std::string text = o.substr(eq + 1);
    const ConfigKey* key = schema.Find(name);
    if (!key) {
      problems.push_back(name + ": unknown key given on the command line");
      continue;
    }
    auto v = ParseText(key->type, text);
    if (!v) {
      problems.push_back(name + ": '" + text + "' is not " + WithArticle(key->type));
      continue;
    }
    cfg.values_[name] = *v;
    cfg.sources_[name] = "flag";
  }

  for (const auto& k : schema.keys()) {
    if (!k.check) continue;
    if (auto problem = k.check(cfg.values_[k.name])) {
      problems.push_back(k.name + ": " + *problem + " (from " + cfg.sources_[k.name] + ")");
    }
  }

  if (!problems.empty()) {
    std::string msg = std::to_string(problems.size()) + " configuration problem(s):";
    for (const auto& p : problems) msg += "\n  - " + p;
    return MakeError(ErrorKind::kInvalidArgument, "invalid_config", msg);
  }
  return cfg;
}

std::string Config::GetString(const std::string& key) const { return std::get<std::string>(values_.at(key)); }
std::int64_t Config::GetInt(const std::string& key) const { return std::get<std::int64_t>(values_.at(key)); }
double Config::GetDouble(const std::string& key) const { return std::get<double>(values_.at(key)); }
bool Config::GetBool(const std::string& key) const { return std::get<bool>(values_.at(key)); }
std::string Config::SourceOf(const std::string& key) const {
  auto it = sources_.find(key);
  return it == sources_.end() ? "unknown" : it->second;
}

}  // namespace edgeprune
