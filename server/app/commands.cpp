#include "server/app/commands.hpp"

#include <cstdio>
#include <vector>

#include "server/app/token_command.hpp"
#include "server/app/serve_command.hpp"
#include "server/app/routes_command.hpp"
#include "server/model_worker/worker_main.hpp"
#include "server/models/commands.hpp"
#include "server/pruning/prune_command.hpp"
#include "edgeprune/common/cli.hpp"

namespace edgeprune::server {
namespace {

int RunVersion(int, char**) {
  std::printf("edgeprune-server 0.1.0\n");
  return 0;
}

const std::vector<cli::Command>& Commands() {
  static const std::vector<cli::Command> commands = {
      {"serve", "run the HTTPS server until SIGINT/SIGTERM", RunServe},
      {"worker", "run variant-build workers only, on the PostgreSQL database serve uses",
       RunWorker},
      {"config", "print the configuration schema (--check validates a configuration)", RunConfig},
      {"train", "train a master model and write its model card", models::RunTrainCommand},
      {"evaluate", "measure a model's accuracy, latency and throughput", models::RunEvaluateCommand},
      {"cost", "print a model's parameters, MACs and activation memory", models::RunCostCommand},
      {"routes", "print every route serve would serve, as JSON (the API contract's check)",
       RunRoutes},
      {"token", "manage operator API tokens: create, list, revoke", RunTokenCommand},
      {"prune", "prune a master to a budget and fine-tune it (pruning report)", pruning::RunPruneCommand},
      {"model-worker", "run one piece of model work in a sandbox (started by the server)",
       model_worker::RunModelWorkerCommand},
      {"version", "print the version", RunVersion},
  };
  return commands;
}

}  // namespace

int Dispatch(int argc, char** argv) {
  return cli::Dispatch("edgeprune-server", Commands(), "serve", argc, argv);
}

}  // namespace edgeprune::server
