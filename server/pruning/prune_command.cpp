#include "server/pruning/prune_command.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <type_traits>

#include "edgeprune/common/cli.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/shape.hpp"
#include "server/models/dataset.hpp"
#include "server/models/evaluate.hpp"
#include "server/models/model_card.hpp"
#include "server/models/torchscript.hpp"
#include "server/pruning/batch_norm.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/pipeline.hpp"
#include "server/pruning/report.hpp"
#include "server/pruning/sparsity.hpp"

namespace edgeprune::pruning {
namespace {

int Fail(const Error& e) {
  std::fprintf(stderr, "edgeprune-server prune: %s (%s)\n", e.message.c_str(), e.code.c_str());
  return 1;
}

struct Flags {
  std::string master, out, json;
  std::string dataset = "fashion-mnist";
  std::string data_dir = models::kDefaultFashionMnistDir;
  std::string input_shape;
  int64_t train_limit = 0, test_limit = 0;
  std::string max_param_bytes, max_macs, max_activation_bytes, max_latency_ms;
  double macs_per_ms = 0, overhead_ms = 0;
  std::string importance = "taylor";
  PruneOptions options;
  bool measure = true;
  std::string latency_prep = "folded";
  int threads = 1;
};

// How a model is prepared before its latency is measured; master and variant always get the same.
const char* LatencyMethod(const std::string& prep) {
  if (prep == "loaded") return "as loaded";
  if (prep == "folded") return "evaluation graph inlined, batch norms folded into the layers before them";
  if (prep == "frozen") return "evaluation graph inlined, batch norms folded, torch::jit::freeze";
  if (prep == "optimized") {
    return "evaluation graph inlined, batch norms folded, torch::jit::optimize_for_inference";
  }
  return nullptr;
}

Result<torch::jit::Module> PrepareForLatency(const std::string& bytes, const std::string& prep,
                                             const std::vector<int64_t>& shape, const char* what) {
  try {
    if (prep == "loaded") {
      std::istringstream in(bytes);
      torch::jit::Module module = torch::jit::load(in, torch::kCPU);
      module.eval();
      return module;
    }
    EP_ASSIGN_OR_RETURN(EvalModule m, LoadEvalModule(bytes, what));
    std::vector<int64_t> batch = {1};
    batch.insert(batch.end(), shape.begin(), shape.end());
    EP_ASSIGN_OR_RETURN(int folded, FoldBatchNorm(m, batch));
    (void)folded;
    if (prep == "frozen") return torch::jit::freeze(m.module);
    if (prep == "optimized") return torch::jit::optimize_for_inference(m.module);
    return m.module;
  } catch (const std::exception& e) {
    std::string why = e.what();
    return MakeError(ErrorKind::kInternal, "load_failed",
                     std::string(what) + " cannot be prepared for timing: " +
                         why.substr(0, why.find('\n')));
  }
}

// Batch-1 latency of master and variant at one intra-op thread, timed interleaved (master,
// variant, master, ...) so that both see the same load on a shared machine: 20 warm-up runs each,
// then p50/p95 of 300 timed runs each. Like models::MeasureLatency otherwise, but it also takes
// frozen modules (whose weights are constants, not parameters).
Status TimeSideBySide(torch::jit::Module& master, torch::jit::Module& variant,
                      const std::vector<int64_t>& shape, Measured* mm, Measured* vm) {
  constexpr int kWarmup = 20, kRuns = 300;
  std::vector<int64_t> batch = {1};
  batch.insert(batch.end(), shape.begin(), shape.end());
  int previous = models::SetIntraOpThreads(0);  // 0: unchanged, returns the current count
  models::SetIntraOpThreads(1);
  std::vector<double> ms[2];
  torch::jit::Module* timed[2] = {&master, &variant};
  try {
    torch::InferenceMode guard;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
    at::Tensor input = torch::randn(batch, gen);
    for (int i = 0; i < kWarmup; ++i) {
      for (auto* m : timed) m->forward({input});
    }
    for (int i = 0; i < kRuns; ++i) {
      for (int k = 0; k < 2; ++k) {
        auto t0 = std::chrono::steady_clock::now();
        timed[k]->forward({input});
        ms[k].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
      }
    }
  } catch (const std::exception& e) {
    models::SetIntraOpThreads(previous);
    std::string why = e.what();
    return MakeError(ErrorKind::kInternal, "latency_failed",
                     "timing master and variant failed: " + why.substr(0, why.find('\n')));
  }
  models::SetIntraOpThreads(previous);
  Measured* out[2] = {mm, vm};
  for (int k = 0; k < 2; ++k) {
    std::sort(ms[k].begin(), ms[k].end());
    out[k]->latency_p50_ms = 0.5 * (ms[k][kRuns / 2 - 1] + ms[k][kRuns / 2]);
    out[k]->latency_p95_ms = ms[k][(kRuns * 95 + 99) / 100 - 1];
  }
  return Ok();
}

Result<Measured> MeasureAccuracy(const std::string& bytes, const models::Dataset& test,
                                 const char* what) {
  Measured m;
  torch::jit::Module module;
  try {
    std::istringstream in(bytes);
    module = torch::jit::load(in, torch::kCPU);
    module.eval();
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInternal, "load_failed", std::string(what) + " does not load");
  }
  EP_ASSIGN_OR_RETURN(models::AccuracyResult acc, models::EvaluateAccuracy(module, test));
  m.accuracy = acc.accuracy;
  return m;
}

// Accuracy of each as written; latency of both prepared by `prep`, timed side by side.
Status Measure(const std::string& master, const std::string& variant, const models::Dataset& test,
               const std::vector<int64_t>& shape, bool latency, const std::string& prep,
               VariantReport* report) {
  EP_ASSIGN_OR_RETURN(report->master, MeasureAccuracy(master, test, "master"));
  EP_ASSIGN_OR_RETURN(report->variant, MeasureAccuracy(variant, test, "variant"));
  if (!latency) return Ok();
  EP_ASSIGN_OR_RETURN(torch::jit::Module m, PrepareForLatency(master, prep, shape, "master"));
  EP_ASSIGN_OR_RETURN(torch::jit::Module v, PrepareForLatency(variant, prep, shape, "variant"));
  return TimeSideBySide(m, v, shape, &report->master, &report->variant);
}

int Run(Flags& f) {
  auto master = ReadModelBytes(f.master);
  if (!master.ok()) return Fail(master.error());
  if (f.out.empty()) return Fail(MakeError(ErrorKind::kInvalidArgument, "invalid_flag", "--out is required"));

  // The master's card, when present, fixes normalization and input shape.
  std::optional<models::ModelCard> card;
  models::Normalization norm;
  std::string card_path = models::CardPathFor(f.master);
  std::error_code ec;
  if (std::filesystem::exists(card_path, ec)) {
    auto c = models::ReadModelCard(card_path);
    if (!c.ok()) return Fail(c.error());
    card = *c;
    norm.mean = card->normalization_mean;
    norm.std = card->normalization_std;
  }
  models::SplitOptions split;
  split.train_limit = f.train_limit;
  split.test_limit = f.test_limit;
  auto data = models::LoadDataset(f.dataset, f.data_dir, split, norm.mean.empty() ? nullptr : &norm);
  if (!data.ok()) return Fail(data.error());

  std::vector<int64_t> shape = data->train.image_shape();
  if (!f.input_shape.empty()) {
    auto s = ParseShape(f.input_shape);
    if (!s.ok()) return Fail(s.error());
    shape = *s;
  } else if (card && !card->input_shape.empty()) {
    shape = card->input_shape;
  }
  auto master_cost = ModelCost(*master, shape);
  if (!master_cost.ok()) return Fail(master_cost.error().WithContext(f.master));

  Budget& b = f.options.budget;
  auto bound = [&](const char* flag, const std::string& text, double master_value,
                   auto& target) -> Status {
    if (text.empty()) return Ok();
    EP_ASSIGN_OR_RETURN(double v, ParseBound(flag, text, master_value));
    using T = typename std::remove_reference_t<decltype(target)>::value_type;
    target = static_cast<T>(std::is_integral_v<T> ? std::floor(v) : v);
    return Ok();
  };
  if (f.macs_per_ms > 0) b.latency_model = LatencyModel{f.macs_per_ms, f.overhead_ms};
  double master_latency = b.latency_model ? b.latency_model->PredictMs(double(master_cost->macs)) : 0;
  for (auto st : {bound("--max-param-bytes", f.max_param_bytes, double(master_cost->param_bytes),
                        b.max_param_bytes),
                  bound("--max-macs", f.max_macs, double(master_cost->macs), b.max_macs),
                  bound("--max-activation-bytes", f.max_activation_bytes,
                        double(master_cost->peak_activation_bytes), b.max_activation_bytes),
                  bound("--max-latency-ms", f.max_latency_ms, master_latency, b.max_latency_ms)}) {
    if (!st.ok()) return Fail(st.error());
  }
  if (!LatencyMethod(f.latency_prep)) {
    return Fail(MakeError(ErrorKind::kInvalidArgument, "invalid_flag",
                          "--latency-prep must be loaded, folded, frozen or optimized, not '" +
                              f.latency_prep + "'"));
  }
  auto criterion = ParseCriterion(f.importance);
  if (!criterion.ok()) return Fail(criterion.error());
  f.options.criterion = *criterion;
  f.options.input_shape = shape;
  f.options.progress = [](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  models::SetIntraOpThreads(f.threads);
  std::printf("pruning %s (%lld MACs, %lld parameter bytes) with %s importance\n",
              f.master.c_str(), static_cast<long long>(master_cost->macs),
              static_cast<long long>(master_cost->param_bytes), f.importance.c_str());
  auto result = Prune(*master, &*data, f.options);
  if (!result.ok()) return Fail(result.error());
  if (auto st = WriteFileAtomically(f.out, result->variant); !st.ok()) return Fail(st.error());
  if (f.options.sparsity > 0) {
    auto packed = Compress(result->variant);
    if (!packed.ok()) return Fail(packed.error());
    if (auto st = WriteFileAtomically(f.out + ".z", *packed); !st.ok()) return Fail(st.error());
  }
  VariantReport report{*result, {}, {}, f.importance,
                       f.measure ? LatencyMethod(f.latency_prep) : ""};
  if (auto st = Measure(*master, result->variant, data->test, shape, f.measure, f.latency_prep,
                        &report);
      !st.ok()) {
    return Fail(st.error());
  }
  std::printf("wrote %s\n%s", f.out.c_str(), ToText(report).c_str());
  std::string json = json::SerializePretty(ToJson(report));
  if (f.json == "-") {
    std::printf("%s\n", json.c_str());
  } else if (!f.json.empty()) {
    if (auto st = WriteFileAtomically(f.json, json + "\n"); !st.ok()) return Fail(st.error());
  }
  return 0;
}

}  // namespace

Result<double> ParseBound(const std::string& flag, const std::string& text, double master_value) {
  auto bad = [&](const std::string& why) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_budget",
                     flag + " '" + text + "': " + why);
  };
  if (text.empty()) return bad("empty value");
  std::string num = text;
  double scale = 1.0;
  bool relative = false;
  char last = num.back();
  if (last == 'x' || last == 'X') {
    relative = true;
    num.pop_back();
  } else if (last == 'k' || last == 'K') {
    scale = 1e3;
    num.pop_back();
  } else if (last == 'M') {
    scale = 1e6;
    num.pop_back();
  } else if (last == 'G') {
    scale = 1e9;
    num.pop_back();
  }
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(num, &used);
  } catch (const std::exception&) {
    return bad("not a number");
  }
  if (used != num.size() || !std::isfinite(v)) return bad("not a number");
  if (v <= 0) return bad("must be positive");
  if (relative) {
    if (master_value <= 0) return bad("relative bound needs a master value (e.g. a latency model)");
    return v * master_value;
  }
  return v * scale;
}

int RunPruneCommand(int argc, char** argv) {
  Flags f;
  CLI::App app{"Prune a master model to a budget, fine-tune it with distillation, report", "prune"};
  app.add_option("--master", f.master, "master TorchScript model")->required();
  app.add_option("--out", f.out, "where to write the variant")->required();
  app.add_option("--dataset", f.dataset,
                 "fashion-mnist, synthetic:CxHxW:K or a data set file (.npz; IDX pairs in a zip, "
                 "tar or directory)")->capture_default_str();
  app.add_option("--data-dir", f.data_dir, "directory of the IDX files")->capture_default_str();
  app.add_option("--train-limit", f.train_limit, "use only the first N training images");
  app.add_option("--test-limit", f.test_limit, "use only the first N test images");
  app.add_option("--input-shape", f.input_shape, "C,H,W (default: model card or data set)");
  app.add_option("--max-param-bytes", f.max_param_bytes, "bound: parameter bytes (0.1x or 200k)");
  app.add_option("--max-macs", f.max_macs, "bound: MACs at batch 1 (0.25x or 5M)");
  app.add_option("--max-activation-bytes", f.max_activation_bytes, "bound: peak activation bytes");
  app.add_option("--max-latency-ms", f.max_latency_ms, "bound: predicted latency on the device");
  app.add_option("--macs-per-ms", f.macs_per_ms, "device latency model: throughput");
  app.add_option("--overhead-ms", f.overhead_ms, "device latency model: fixed cost");
  app.add_option("--importance", f.importance, "l1, l2, bn or taylor")->capture_default_str();
  app.add_option("--min-keep", f.options.plan.min_keep_ratio, "per-layer minimum keep ratio")
      ->capture_default_str();
  app.add_flag("--cost-aware,!--global-ranking", f.options.plan.cost_aware,
               "rank channels by importance per unit of the bounded resources they cost (default); "
               "--global-ranking: by importance alone");
  app.add_option("--traffic-weight", f.options.plan.traffic_weight,
                 "cost-aware ranking for MACs/latency bounds: weight of activation bytes written "
                 "next to MACs (0 = MACs alone)")
      ->capture_default_str()->check(CLI::Range(0.0, 10.0));
  app.add_option("--round-to", f.options.plan.round_to, "kept channel multiple")->capture_default_str();
  app.add_option("--step", f.options.step_fraction, "cost share removed per step")->capture_default_str();
  app.add_option("--step-finetune-steps", f.options.between_steps.steps, "fine-tuning between steps")
      ->capture_default_str();
  app.add_option("--finetune-steps", f.options.final_tune.steps, "final fine-tuning steps")
      ->capture_default_str();
  app.add_option("--finetune-seconds", f.options.final_tune.seconds, "final fine-tuning time limit")
      ->capture_default_str();
  app.add_option("--lr", f.options.final_tune.learning_rate, "fine-tuning peak learning rate")
      ->capture_default_str();
  app.add_option("--kd-alpha", f.options.final_tune.kd_alpha, "distillation weight (0 = labels only)")
      ->capture_default_str();
  app.add_option("--kd-temperature", f.options.final_tune.temperature, "distillation temperature")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--warmup", f.options.final_tune.warmup,
                 "share of each fine-tuning budget spent warming the learning rate up")
      ->capture_default_str()->check(CLI::Range(0.0, 0.5));
  app.add_option("--batch-size", f.options.final_tune.batch_size, "fine-tuning batch size")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--augment-shift", f.options.final_tune.shift_pixels,
                 "fine-tuning augmentation: random shifts of up to N pixels (0 = none)")
      ->capture_default_str()->check(CLI::Range(0, 16));
  app.add_flag("--augment-flip", f.options.final_tune.horizontal_flip,
               "fine-tuning augmentation: random left-right mirroring");
  app.add_option("--seed", f.options.final_tune.seed,
                 "fine-tuning seed (the order of training batches)")
      ->capture_default_str();
  app.add_flag("--train-bn,!--frozen-bn", f.options.final_tune.train_batch_norm,
               "fine-tune with batch norms in training mode (batch statistics, running statistics "
               "updated); --frozen-bn: the evaluation-mode graph with fixed statistics");
  app.add_option("--sparsity", f.options.sparsity,
                 "unstructured sparsity on top (0..1); alone, without a bound: the baseline");
  app.add_flag("--sparsity-random", f.options.random_sparsity, "random instead of magnitude");
  app.add_option("--latency-prep", f.latency_prep,
                 "how master and variant are both prepared for timing: loaded, folded, frozen "
                 "or optimized")
      ->capture_default_str();
  app.add_option("--bn-recalibration-batches", f.options.bn_recalibration_batches,
                 "calibration batches re-estimating batch-norm statistics after each change "
                 "(0 = never)")
      ->capture_default_str();
  app.add_flag("!--no-fold-bn", f.options.fold_batch_norm,
               "keep batch norms separate in the emitted variant");
  app.add_option("--threads", f.threads, "intra-op threads")->capture_default_str();
  app.add_option("--json", f.json, "write the report as JSON here ('-' for stdout)");
  app.add_flag("!--no-latency", f.measure, "skip the latency measurement");
  if (auto code = cli::Parse(app, argc, argv)) return *code;
  f.options.between_steps.learning_rate = f.options.final_tune.learning_rate;
  f.options.between_steps.kd_alpha = f.options.final_tune.kd_alpha;
  f.options.between_steps.temperature = f.options.final_tune.temperature;
  f.options.between_steps.warmup = f.options.final_tune.warmup;
  f.options.between_steps.batch_size = f.options.final_tune.batch_size;
  f.options.between_steps.shift_pixels = f.options.final_tune.shift_pixels;
  f.options.between_steps.horizontal_flip = f.options.final_tune.horizontal_flip;
  f.options.between_steps.train_batch_norm = f.options.final_tune.train_batch_norm;
  f.options.between_steps.seed = f.options.final_tune.seed;
  return Run(f);
}

}  // namespace edgeprune::pruning
