// edgeprune: the operator CLI. Parses the command line (CLI11: nouns and verbs, global flags
// anywhere), resolves the context, runs the chosen verb and turns its outcome into one exit code
// (cli/exit_codes.hpp) and, on failure, one line on stderr naming the error's code.
#include <cstdio>

#include "cli/command.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "edgeprune/common/cli.hpp"

namespace ec = edgeprune::ctl;

CLI::App* ec::AddVerb(CLI::App* parent, const std::string& name, const std::string& help,
                      Chosen& chosen, Needs needs, Action action) {
  auto* verb = parent->add_subcommand(name, help);
  verb->callback([&chosen, needs, action = std::move(action)] { chosen = {action, needs}; });
  return verb;
}

void ec::Print(const Session& s, const Reply& r,
               const std::function<std::string(const boost::json::value&)>& human) {
  PrintOut(s.json() ? r.raw : human(r.json));
}

int main(int argc, char** argv) {
  CLI::App app{"edgeprune: the operator CLI of an edgeprune server", "edgeprune"};
  app.require_subcommand(1);
  ec::Session session;
  auto& f = session.flags;
  app.add_option("--config", f.config, "CLI configuration file (default: $EDGEPRUNE_CONFIG or ~/.config/edgeprune/config.json)");
  app.add_option("--context", f.context, "context to use (default: the current one)");
  app.add_option("--server", f.server, "server URL, https://HOST:PORT (overrides the context)");
  app.add_option("--ca", f.ca, "CA file that signed the server's certificate (overrides the context)");
  app.add_option("--token-file", f.token_file, "file holding the bearer token (EDGEPRUNE_TOKEN wins)");
  app.add_option("-o,--output", f.output, "table or json")->check(CLI::IsMember({"table", "json"}));
  app.add_flag("-v,--verbose", f.verbose, "print each request and answer on stderr (never the token)");
  app.add_option("--timeout", f.timeout_s, "seconds per network step")->check(CLI::Range(1, 3600));
  ec::Chosen chosen;
  ec::AddContextCommands(app, chosen);
  ec::AddFleetCommands(app, chosen);
  ec::AddCatalogCommands(app, chosen);
  ec::AddJobCommands(app, chosen);
  ec::AddRolloutCommands(app, chosen);
  // Global flags may follow the verb: `edgeprune devices ls -o json`.
  for (auto* noun : app.get_subcommands({})) {
    noun->fallthrough();
    for (auto* verb : noun->get_subcommands({})) verb->fallthrough();
  }
  if (auto code = edgeprune::cli::Parse(app, argc, argv)) return *code;
  if (!chosen.action) {
    std::fprintf(stderr, "edgeprune: give a verb (--help lists them)\n");
    return ec::kExitUsage;
  }
  auto fail = [&](const edgeprune::Error& e) {
    const std::string line = session.api ? session.api->Redact(e.message) : e.message;
    std::fprintf(stderr, "edgeprune: %s: %s\n", e.code.c_str(), line.c_str());
    return ec::ExitCodeFor(e);
  };
  if (chosen.needs != ec::Needs::kNothing) {
    auto target = ec::ResolveTarget(f, chosen.needs == ec::Needs::kToken);
    if (!target.ok()) return fail(target.error());
    auto api = ec::ApiClient::Open(std::move(target).value(), {f.verbose, f.timeout_s});
    if (!api.ok()) return fail(api.error());
    session.api = std::move(api).value();
  }
  auto status = chosen.action(session);
  if (!status.ok()) return fail(status.error());
  return ec::kExitOk;
}
