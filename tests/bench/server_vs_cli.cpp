// Server = CLI: builds one variant per budget twice from the same master and data, once through
// the server's builder exactly as a build job calls it (model_worker::MakeVariantBuilder with the
// options the server derives from its variants.* configuration) and once through
// `edgeprune-server prune` with the same settings, and prints accuracy, cost, steps and wall time
// of both side by side. Not a test: the figures go to docs/benchmarks.md.
//
//   cmake --build build --target server_vs_cli
//   build/tests/server_vs_cli --master data/masters/lenet5.pt --caps 120000,30000
//       [--set variants.finetune_steps=3000 ...] [--out-dir DIR]
//
// --caps are devices' model-byte caps, as the quickstart's agents declare them (medium 120000,
// tiny 30000): each becomes the budget of its ladder bucket (parameter bytes and MACs, a power of
// sqrt(2) below the master's), the budget a build job gets for such a device.
// The CLI runs with the per-layer floor the server ended up with (the server lowers it for budgets
// the default floor cannot reach; the CLI leaves that to --min-keep).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "edgeprune/common/config.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/torchscript.hpp"
#include "server/pruning/prune_command.hpp"
#include "server/model_worker/variant_build.hpp"
#include "server/deploy/ladder.hpp"
#include "server/app/variants_module.hpp"

namespace {

using namespace edgeprune;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int Usage() {
  std::fprintf(stderr,
               "usage: server_vs_cli --master M.pt --caps BYTES[,BYTES...] [--set k=v]... "
               "[--out-dir DIR]\n");
  return 2;
}

// `edgeprune-server prune` in this process with the server's settings; its JSON report.
Result<boost::json::object> RunCli(const catalog::VariantBuildOptions& o, const std::string& master,
                                   const Budget& budget, double min_keep, const std::string& dir) {
  const std::string json_path = dir + "/cli.json";
  std::vector<std::string> args = {
      "prune", "--master", master, "--out", dir + "/cli.pt", "--dataset", "fashion-mnist",
      "--max-param-bytes", std::to_string(*budget.max_param_bytes),
      "--max-macs", std::to_string(*budget.max_macs), "--importance", o.importance,
      "--step", std::to_string(o.step_fraction),
      "--step-finetune-steps", std::to_string(o.step_finetune_steps),
      "--finetune-steps", std::to_string(o.finetune_steps),
      "--finetune-seconds", std::to_string(o.finetune_seconds),
      "--batch-size", std::to_string(o.batch_size), "--min-keep", std::to_string(min_keep),
      "--threads", std::to_string(o.threads > 0 ? o.threads : 1),
      "--train-limit", std::to_string(o.train_limit), "--test-limit", std::to_string(o.test_limit),
      "--no-latency", "--json", json_path};
  if (!o.dataset_dir.empty()) {
    args.push_back("--data-dir");
    args.push_back(o.dataset_dir);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (int rc = pruning::RunPruneCommand(static_cast<int>(argv.size()), argv.data()); rc != 0) {
    return MakeError(ErrorKind::kInternal, "cli_failed", "prune exited " + std::to_string(rc));
  }
  EP_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(json_path));
  return json::ParseObject(text);
}

}  // namespace

int main(int argc, char** argv) {
  std::string master, out_dir = std::filesystem::temp_directory_path() / "server_vs_cli";
  std::vector<std::int64_t> caps;
  std::vector<std::string> sets;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--master") {
      master = value;
    } else if (flag == "--out-dir") {
      out_dir = value;
    } else if (flag == "--set") {
      sets.push_back(value);
    } else if (flag == "--caps") {
      std::istringstream in(value);
      for (std::string b; std::getline(in, b, ',');) caps.push_back(std::stoll(b));
    } else {
      return Usage();
    }
  }
  if (master.empty() || caps.empty() || argc % 2 == 0) return Usage();
  ConfigSchema schema;
  server::AddVariantsConfig(schema);
  auto config = Config::Load(schema, "", sets, "");
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.error().ToString().c_str());
    return 2;
  }
  auto options = server::VariantBuildOptionsFrom(*config);
  if (!options.ok()) {
    std::fprintf(stderr, "%s\n", options.error().ToString().c_str());
    return 2;
  }
  const auto build = model_worker::MakeVariantBuilder(*options);
  // The master's cost as the upload check records it (model worker, ValidateTask).
  auto module = models::LoadModule(master);
  auto facts = module.ok() ? models::EstimateCost(*module, {1, 28, 28})
                           : Result<models::CostReport>(module.error());
  if (!facts.ok()) {
    std::fprintf(stderr, "%s\n", facts.error().ToString().c_str());
    return 1;
  }
  const catalog::ModelCost master_cost{(facts->param_bytes + facts->buffer_bytes) / 4, facts->macs,
                                        facts->peak_activation_bytes};
  std::printf("| device cap → bucket budget | path | master %% | variant %% | change pt | params | MACs | "
              "pruning steps | fine-tuning steps | floor | wall s |\n|---|---|---|---|---|---|---|"
              "---|---|---|---|\n");
  for (std::int64_t cap : caps) {
    Budget device;
    device.max_param_bytes = cap;
    const auto level = deploy::LevelFor(deploy::AffordableFraction(device, master_cost));
    if (!level) return Usage();
    const Budget budget = deploy::BudgetForLevel(master_cost, *level);
    char label[96];
    std::snprintf(label, sizeof label, "%lld B → %s: ≤ %lld B, ≤ %lld MACs",
                  static_cast<long long>(cap), deploy::BucketKey(*level).c_str(),
                  static_cast<long long>(*budget.max_param_bytes),
                  static_cast<long long>(*budget.max_macs));
    const std::string dir = out_dir + "/" + std::to_string(cap);
    std::filesystem::create_directories(dir + "/work");
    catalog::BuildRequest r;
    r.master_path = master;
    r.input_shape = {1, 1, 28, 28};
    r.num_classes = 10;
    r.dataset = "fashion-mnist";
    r.budget = budget;
    r.work_dir = dir + "/work";
    r.output_path = dir + "/server.pt";
    auto t0 = std::chrono::steady_clock::now();
    auto s = build(r);
    const double server_s = Seconds(t0);
    if (!s.ok()) {
      std::fprintf(stderr, "server build for %s: %s\n", label,
                   s.error().ToString().c_str());
      return 1;
    }
    std::printf("| %s | server | %.2f | %.2f | %+.2f | %lld | %lld | %lld | %lld/%lld | %.2f | "
                "%.0f |\n",
                label, 100 * s->master_accuracy, 100 * s->accuracy,
                100 * (s->accuracy - s->master_accuracy), static_cast<long long>(s->parameters),
                static_cast<long long>(s->macs), static_cast<long long>(s->pruning_steps),
                static_cast<long long>(s->finetune_steps),
                static_cast<long long>(s->finetune_steps_planned), s->min_keep_ratio, server_s);
    std::fflush(stdout);
    t0 = std::chrono::steady_clock::now();
    auto c = RunCli(*options, master, budget, s->min_keep_ratio, dir);
    const double cli_s = Seconds(t0);
    if (!c.ok()) {
      std::fprintf(stderr, "CLI for %s: %s\n", label,
                   c.error().ToString().c_str());
      return 1;
    }
    const auto& mv = c->at("master").as_object();
    const auto& vv = c->at("variant").as_object();
    const double ma = mv.at("accuracy").to_number<double>();
    const double va = vv.at("accuracy").to_number<double>();
    std::printf("| %s | CLI | %.2f | %.2f | %+.2f | %lld | %lld | %lld | %lld | %.2f | %.0f |\n",
                label, 100 * ma, 100 * va, 100 * (va - ma),
                static_cast<long long>(vv.at("param_bytes").to_number<std::int64_t>() / 4),
                static_cast<long long>(vv.at("macs").to_number<std::int64_t>()),
                static_cast<long long>(c->at("steps").to_number<std::int64_t>()),
                static_cast<long long>(c->at("finetune_steps").to_number<std::int64_t>()),
                s->min_keep_ratio, cli_s);
    std::printf("| %s | server − CLI | | | **%+.2f** | | | | | | |\n", label,
                100 * (s->accuracy - va));
    std::fflush(stdout);
  }
  return 0;
}
