#include "server/app/serve_command.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "edgeprune/common/cli.hpp"
#include "server/app/application.hpp"
#include "server/app/server_config.hpp"

namespace edgeprune::server {
namespace {

using cli::ConfigFlags;
using cli::AddConfigFlags;
using cli::Parse;

// serve and worker: the same flags and configuration, then one of the Application's two roles.
int RunApplication(int argc, char** argv, const char* about, const char* name,
                   int (Application::*role)()) {
  CLI::App app{about, name};
  ConfigFlags flags;
  AddConfigFlags(app, flags);
  if (auto code = Parse(app, argc, argv)) return *code;

  auto config = Config::Load(ServerConfigSchema(), flags.file, flags.overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "edgeprune-server: %s\n", config.error().message.c_str());
    return 2;
  }
  Application application(std::move(config).value());
  return (application.*role)();
}

}  // namespace

int RunServe(int argc, char** argv) {
  return RunApplication(argc, argv,
                        "Run the edgeprune server over HTTPS until SIGINT/SIGTERM (then drain and "
                        "exit 0)",
                        "edgeprune-server serve", &Application::Run);
}

int RunWorker(int argc, char** argv) {
  return RunApplication(argc, argv,
                        "Run variant-build workers only (no HTTP listener) on the PostgreSQL "
                        "database the serve processes share, until SIGINT/SIGTERM",
                        "edgeprune-server worker", &Application::RunWorker);
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
