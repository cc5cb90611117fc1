#include "server/app/token_command.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "edgeprune/common/cli.hpp"
#include "edgeprune/common/fs.hpp"
#include "server/app/server_config.hpp"
#include "server/fleet/api_tokens.hpp"
#include "server/store/migrator.hpp"

namespace edgeprune::server {
namespace {

int Fail(const Error& e) {
  std::fprintf(stderr, "edgeprune-server token: %s\n", e.ToString().c_str());
  return 1;
}

}  // namespace

int RunTokenCommand(int argc, char** argv) {
  CLI::App app{"Manage operator API tokens in the server's database", "edgeprune-server token"};
  std::string config_file;
  std::vector<std::string> overrides;
  app.add_option("--config", config_file, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("--set", overrides, "override one key: section.key=value (repeatable)")->take_all();
  app.require_subcommand(1);
  // `token create --config f` as well as `token --config f create`: subcommands hand the flags
  // they do not know to this level.
  app.fallthrough();
  std::string name, role = "viewer";
  auto* create = app.add_subcommand("create", "create a token and print its secret once");
  create->add_option("--name", name, "token name (letters, digits, . _ -)")->required();
  create->add_option("--role", role, "admin, operator or viewer")
      ->check(CLI::IsMember({"admin", "operator", "viewer"}));
  auto* list = app.add_subcommand("list", "list tokens (never secrets)");
  auto* revoke = app.add_subcommand("revoke", "revoke a token by name");
  revoke->add_option("--name", name, "token name")->required();
  if (auto code = cli::Parse(app, argc, argv)) return *code;

  auto config = Config::Load(server::ServerConfigSchema(), config_file, overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "edgeprune-server token: %s\n", config.error().message.c_str());
    return 2;
  }
  // Like `serve`, the first command run on a fresh data dir may be this one (an admin token
  // before the first start): make the directory rather than fail to open the database in it.
  const std::string data_dir = config->GetString("server.data_dir");
  // 0700: the database holds token hashes, the audit log and device identities; blobs hold the
  // masters. Nobody but the server's user has a reason to read them.
  if (auto made = fs::EnsureDir(data_dir, 0700); !made.ok()) {
    return Fail(MakeError(ErrorKind::kIo, "data_dir_unusable",
                          "server.data_dir " + data_dir + ": " + made.error().message));
  }
  auto db = store::OpenAndMigrate(config->GetString("store.url"), data_dir,
                                  config->GetString("store.migrations_dir"));
  if (!db.ok()) return Fail(db.error());
  std::shared_ptr<store::Database> database = std::move(db).value();

  auto clock = std::make_shared<SystemClock>();
  auto audit = std::make_shared<fleet::AuditLog>(database, clock);
  fleet::ApiTokens tokens(database, clock, audit);
  const std::string actor = "cli";
  if (create->parsed()) {
    auto created = tokens.Create(name, *http::ParseRole(role), actor);
    if (!created.ok()) return Fail(created.error());
    std::printf("%s\n", created->secret.c_str());
    std::fprintf(stderr, "created %s token '%s'; the secret above is shown only once\n",
                 role.c_str(), name.c_str());
    return 0;
  }
  if (list->parsed()) {
    auto all = tokens.List();
    if (!all.ok()) return Fail(all.error());
    for (const auto& t : *all) {
      std::printf("%-32s %-8s %s\n", t.name.c_str(), http::RoleName(t.role),
                  t.revoked_at_ms ? "revoked" : "active");
    }
    return 0;
  }
  if (auto s = tokens.Revoke(name, actor); !s.ok()) return Fail(s.error());
  std::printf("revoked %s\n", name.c_str());
  return 0;
}

}  // namespace edgeprune::server
