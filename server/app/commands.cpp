#include "server/app/commands.hpp"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "server/api/token_command.hpp"
#include "server/app/serve_command.hpp"
#include "server/models/commands.hpp"
#include "server/pruning/prune_command.hpp"

namespace edgeprune::server {
namespace {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  const char* name;
  const char* help;
  CommandFn run;  // receives argv shifted so argv[0] is the command name
};

int RunVersion(int, char**) {
  std::printf("edgeprune-server 0.1.0\n");
  return 0;
}

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"serve", "run the HTTPS server until SIGINT/SIGTERM", RunServe},
      {"config", "print the configuration schema (--check validates a configuration)", RunConfig},
      {"train", "train a master model and write its model card", models::RunTrainCommand},
      {"evaluate", "measure a model's accuracy, latency and throughput", models::RunEvaluateCommand},
      {"cost", "print a model's parameters, MACs and activation memory", models::RunCostCommand},
      {"token", "manage operator API tokens: create, list, revoke", api::RunTokenCommand},
      {"prune", "prune a master to a budget and fine-tune it (pruning report)", pruning::RunPruneCommand},
      {"version", "print the version", RunVersion},
  };
  return commands;
}

void PrintUsage() {
  std::fprintf(stderr, "usage: edgeprune-server <command> [flags]\n\ncommands:\n");
  for (const auto& c : Commands()) std::fprintf(stderr, "  %-10s %s\n", c.name, c.help);
  std::fprintf(stderr, "\n`edgeprune-server <command> --help` describes a command's flags.\n");
}

}  // namespace

int Dispatch(int argc, char** argv) {
  std::string name = argc >= 2 ? argv[1] : "serve";
  if (name == "-h" || name == "--help" || name == "help") {
    PrintUsage();
    return 0;
  }
  for (const auto& c : Commands()) {
    if (name == c.name) {
      if (argc >= 2) return c.run(argc - 1, argv + 1);
      char* args[] = {const_cast<char*>(c.name), nullptr};
      return c.run(1, args);
    }
  }
  std::fprintf(stderr, "edgeprune-server: unknown command '%s'\n\n", name.c_str());
  PrintUsage();
  return 2;
}

}  // namespace edgeprune::server
