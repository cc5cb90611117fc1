#include "server/app/serve_command.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "server/app/application.hpp"
#include "server/app/server_config.hpp"

namespace edgeprune::server {
namespace {

struct ConfigFlags {
  std::string file;
  std::vector<std::string> overrides;
};

void AddConfigFlags(CLI::App& app, ConfigFlags& flags) {
  app.add_option("--config", flags.file, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("--set", flags.overrides, "override one key: section.key=value (repeatable)")
      ->take_all();
}

// Parses argv; returns an exit code when the command must stop here (help, bad flags).
std::optional<int> Parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return std::nullopt;
}

}  // namespace

int RunServe(int argc, char** argv) {
  CLI::App app{"Run the edgeprune server over HTTPS until SIGINT/SIGTERM (then drain and exit 0)",
               "edgeprune-server serve"};
  ConfigFlags flags;
  AddConfigFlags(app, flags);
  if (auto code = Parse(app, argc, argv)) return *code;

  auto config = Config::Load(ServerConfigSchema(), flags.file, flags.overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "edgeprune-server: %s\n", config.error().message.c_str());
    return 2;
  }
  Application application(std::move(config).value());
  return application.Run();
}

int RunConfig(int argc, char** argv) {
  CLI::App app{"Print the configuration schema as a markdown table, or check a configuration",
               "edgeprune-server config"};
  ConfigFlags flags;
  bool check = false;
  AddConfigFlags(app, flags);
  app.add_flag("--check", check, "validate --config/--set/environment and print every value");
  if (auto code = Parse(app, argc, argv)) return *code;

  const ConfigSchema schema = ServerConfigSchema();
  if (!check) {
    std::printf("%s", schema.Describe().c_str());
    return 0;
  }
  auto config = Config::Load(schema, flags.file, flags.overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "edgeprune-server: %s\n", config.error().message.c_str());
    return 2;
  }
  for (const auto& key : schema.keys()) {
    std::string value;
    switch (key.type) {
      case ConfigType::kString: value = config->GetString(key.name); break;
      case ConfigType::kInt: value = std::to_string(config->GetInt(key.name)); break;
      case ConfigType::kDouble: value = std::to_string(config->GetDouble(key.name)); break;
      case ConfigType::kBool: value = config->GetBool(key.name) ? "true" : "false"; break;
    }
    std::printf("%s = %s  (%s)\n", key.name.c_str(), value.c_str(),
                config->SourceOf(key.name).c_str());
  }
  return 0;
}

}  // namespace edgeprune::server
