// Torchvision models through the engine: for every `<model>_<form>.pt` named by a reference file
// (`<model> <macs> <params>` per line, counted with PyTorch forward hooks), the engine's MACs and
// parameters next to the reference, the share of convolution/linear output channels that fall in
// prunable groups, the operators that froze channels, and whether pruning to 2× fewer MACs
// (L1 scores, no data, so no fine-tuning) succeeds with a valid output. Prints one Markdown row per
// model and form. Not a test: tests/bench/torchvision.sh makes the models and writes the table to
// docs/benchmarks/pruning.md.
//
//   cmake --build build --target torchvision_bench
//   build/tests/torchvision_bench DIR      (DIR holds reference.txt and the .pt files)
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "server/pruning/analysis.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/pipeline.hpp"

namespace {

using namespace edgeprune;
using namespace edgeprune::pruning;

const std::vector<int64_t> kShape = {3, 32, 32};

// Output channels of convolutions and linear layers that open a channel space (depthwise ones
// follow their input): how many there are and how many sit in a prunable group.
std::pair<int64_t, int64_t> PrunableChannels(const Analysis& a) {
  int64_t all = 0, prunable = 0;
  for (const auto& l : a.layers) {
    if (l.depthwise) continue;
    auto it = a.tensors.find(l.name);
    if (it == a.tensors.end() || it->second.empty()) continue;
    all += it->second[0];
    if (l.fixed_macs < 0 && l.out.size() == 1 && a.GroupOf(l.out[0].space)) {
      prunable += it->second[0];
    }
  }
  return {all, prunable};
}

std::string Join(const std::set<std::string>& ops) {
  std::string out;
  for (const auto& op : ops) {
    if (op.rfind("shared parameter", 0) == 0) continue;
    out += (out.empty() ? "" : ", ") + op;
  }
  return out.empty() ? "—" : out;
}

void Row(const std::string& dir, const std::string& model, const std::string& form,
         int64_t ref_macs, int64_t ref_params) {
  const std::string label = "| " + model + " | " + form + " | ";
  auto bytes = ReadModelBytes(dir + "/" + model + "_" + form + ".pt");
  if (!bytes.ok()) {
    std::printf("%s%s | | | | | |\n", label.c_str(), bytes.error().ToString().c_str());
    return;
  }
  auto m = LoadEvalModule(*bytes, model);
  std::optional<Result<Analysis>> a;
  if (m.ok()) a = Analyze(*m, {1, 3, 32, 32});
  if (!m.ok() || !a->ok()) {
    std::printf("%sanalysis failed: %s | | | | | |\n", label.c_str(),
                (m.ok() ? a->error() : m.error()).ToString().c_str());
    return;
  }
  Cost c = EstimateCost(**a, {});
  auto [all, prunable] = PrunableChannels(**a);
  PruneOptions o;
  o.input_shape = kShape;
  o.criterion = Criterion::kL1;
  o.budget.max_macs = ref_macs / 2;
  auto start = std::chrono::steady_clock::now();
  auto r = Prune(*bytes, nullptr, o);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string outcome;
  if (!r.ok()) {
    outcome = "no: " + r.error().code;
  } else {
    std::istringstream in(r->variant);
    auto v = torch::jit::load(in);
    v.eval();
    auto y = RunForward(v, torch::randn({1, 3, 32, 32}), "variant");
    bool valid = y.ok() && y->sizes().vec() == std::vector<int64_t>{1, 10} &&
                 torch::isfinite(*y).all().item<bool>();
    char buf[128];
    std::snprintf(buf, sizeof buf, "%s: %.2f× fewer MACs, %.2f× fewer params, steps: %d",
                  valid ? "yes" : "invalid output", double(ref_macs) / double(r->cost.macs),
                  double(r->master_cost.params) / double(r->cost.params), r->steps);
    outcome = buf;
  }
  std::printf("%s%lld | %lld (%+.2f %%) | %lld / %lld | %.1f %% | %s | %s (%.0f s) |\n",
              label.c_str(), (long long)ref_macs, (long long)c.macs,
              100.0 * double(c.macs - ref_macs) / double(ref_macs), (long long)c.params,
              (long long)ref_params, all ? 100.0 * double(prunable) / double(all) : 0.0,
              Join((*a)->frozen_ops).c_str(), outcome.c_str(), secs);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr,
                 "usage: torchvision_bench DIR (with reference.txt and <model>_<form>.pt)\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::ifstream in(dir + "/reference.txt");
  if (!in) {
    std::fprintf(stderr, "torchvision_bench: no %s/reference.txt\n", dir.c_str());
    return 1;
  }
  torch::manual_seed(1);
  std::printf(
      "| model | form | reference MACs | engine MACs (diff) | engine / reference params "
      "| prunable channels | operators that froze channels | 2× fewer MACs (time) |\n"
      "|---|---|---|---|---|---|---|---|\n");
  std::string model;
  int64_t macs = 0, params = 0;
  while (in >> model >> macs >> params) {
    for (const char* form : {"scripted", "traced"}) Row(dir, model, form, macs, params);
  }
  return 0;
}
