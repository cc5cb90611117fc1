#include "server/pruning/pipeline.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "edgeprune/common/log.hpp"
#include "server/pruning/batch_norm.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/shrink.hpp"
#include "server/pruning/sparsity.hpp"

namespace edgeprune::pruning {
namespace {

std::vector<int64_t> WithBatch(const std::vector<int64_t>& chw) {
  std::vector<int64_t> s = {1};
  s.insert(s.end(), chw.begin(), chw.end());
  return s;
}

// This step's target: every violated bound lowered by at most `fraction` of its current value.
Budget StepTarget(const Budget& final, const Cost& c, double fraction) {
  Budget t = final;
  auto lower = [&](auto& bound, double current) {
    using T = typename std::remove_reference_t<decltype(bound)>::value_type;
    if (bound && current > double(*bound)) {
      bound = std::max<T>(*bound, static_cast<T>(current * (1.0 - fraction)));
    }
  };
  lower(t.max_param_bytes, double(c.param_bytes));
  lower(t.max_macs, double(c.macs));
  lower(t.max_activation_bytes, double(c.peak_activation_bytes));
  if (t.max_latency_ms && t.latency_model) {
    lower(t.max_latency_ms, t.latency_model->PredictMs(double(c.macs)));
  }
  return t;
}

// NetAdapt steps the budget should take from cost c (each lowers a bound by `fraction`), for
// progress: the real count can differ by a step where rounding or the floor intervene.
int ExpectedSteps(const Budget& b, const Cost& c, double fraction) {
  double worst = 1.0;
  auto ratio = [&](const auto& bound, double current) {
    if (bound && double(*bound) > 0) worst = std::max(worst, current / double(*bound));
  };
  ratio(b.max_param_bytes, double(c.param_bytes));
  ratio(b.max_macs, double(c.macs));
  ratio(b.max_activation_bytes, double(c.peak_activation_bytes));
  if (b.max_latency_ms && b.latency_model) {
    ratio(b.max_latency_ms, b.latency_model->PredictMs(double(c.macs)));
  }
  if (worst <= 1.0) return 0;
  return std::max(1, static_cast<int>(std::ceil(std::log(worst) / -std::log(1.0 - fraction))));
}

// The run's planned work in units (a pruning step is one unit plus its fine-tuning steps, the
// final fine-tune its steps) and what is done, reported through PruneOptions::on_progress.
class Progress {
 public:
  Progress(const PruneOptions& o, int expected_steps, bool tunes) : o_(o) {
    const int64_t between = tunes ? std::max<int64_t>(0, o.between_steps.steps) : 0;
    const int64_t final = tunes ? std::max<int64_t>(0, o.final_tune.steps) : 0;
    total_ = double(expected_steps) * double(1 + between) + double(final);
  }
  void Add(double units) { done_ += units; }
  Status Report(std::string_view phase) const { return Tell(phase, done_); }
  // For Finetune: reports `phase` with the steps done on top of what was done before.
  std::function<Status(int64_t)> During(std::string phase) const {
    if (!o_.on_progress) return nullptr;
    const double base = done_;
    return [this, base, phase](int64_t n) { return Tell(phase, base + double(n)); };
  }

 private:
  Status Tell(std::string_view phase, double done) const {
    if (!o_.on_progress) return Ok();
    // More steps than expected stay below 1 until the end.
    return o_.on_progress(phase, total_ > 0 ? std::min(0.99, done / total_) : 0.0);
  }

  const PruneOptions& o_;
  double total_ = 0;
  double done_ = 0;
};

struct Prepared {
  EvalModule module;
  Analysis analysis;
};

Result<Prepared> Prepare(const std::string& bytes, const std::vector<int64_t>& input_shape,
                         const std::string& name) {
  EP_ASSIGN_OR_RETURN(EvalModule m, LoadEvalModule(bytes, name));
  EP_ASSIGN_OR_RETURN(Analysis a, Analyze(m, WithBatch(input_shape)));
  return Prepared{std::move(m), std::move(a)};
}

Result<GroupScores> Score(const Prepared& p, const std::string& bytes,
                          const models::DatasetSplits* data, const PruneOptions& o) {
  std::map<std::string, at::Tensor> saliency;
  if (o.criterion == Criterion::kTaylor) {
    if (!data) {
      return MakeError(ErrorKind::kInvalidArgument, "no_calibration",
                       "Taylor importance needs a data set");
    }
    EP_ASSIGN_OR_RETURN(saliency, TaylorSaliency(bytes, data->calibration, 64,
                                                 o.calibration_batches));
  }
  return ScoreChannels(p.module, p.analysis, o.criterion, saliency);
}

Result<std::string> Tune(const std::string& bytes, torch::jit::Module* teacher,
                         const models::DatasetSplits* data, const FinetuneOptions& options,
                         const std::map<std::string, at::Tensor>* masks,
                         std::function<Status(int64_t)> on_progress, PruneResult* out) {
  if (!data || options.steps <= 0) return bytes;
  EP_ASSIGN_OR_RETURN(EvalModule student, LoadEvalModule(bytes, "variant"));
  FinetuneOptions o = options;
  o.masks = masks;
  if (on_progress) o.on_progress = std::move(on_progress);
  EP_ASSIGN_OR_RETURN(FinetuneReport r, Finetune(student, teacher, data->train, o));
  out->finetune_steps += r.steps;
  out->planned_finetune_steps += options.steps;
  out->finetune_seconds += r.seconds;
  if (r.time_limited) {
    out->time_limited = true;
    log::Get("pruning")->warn("fine-tuning stopped by its {} s limit after {} of {} steps",
                              options.seconds, r.steps, options.steps);
  }
  return SaveModuleBytes(student.module);
}

// Re-estimates batch-norm statistics after the network changed under them; no data: unchanged.
Status Recalibrate(EvalModule& m, const models::DatasetSplits* data, const PruneOptions& o,
                   PruneResult* out) {
  if (!data || o.bn_recalibration_batches <= 0) return Ok();
  const models::Dataset& set = data->calibration.size() > 0 ? data->calibration : data->train;
  EP_ASSIGN_OR_RETURN(int n, RecalibrateBatchNorm(m, set.images, 64, o.bn_recalibration_batches));
  if (n > 0) ++out->recalibrations;
  return Ok();
}

}  // namespace

Result<Cost> ModelCost(const std::string& bytes, const std::vector<int64_t>& input_shape) {
  EP_ASSIGN_OR_RETURN(Prepared p, Prepare(bytes, input_shape, "model"));
  return EstimateCost(p.analysis, {});
}

Result<PruneResult> Prune(const std::string& master, const models::DatasetSplits* data,
                          const PruneOptions& o) {
  auto say = [&](const std::string& line) {
    if (o.progress) o.progress(line);
    log::Get("pruning")->debug("{}", line);
  };
  // Sparsity alone (no bound) is the unstructured baseline: no structural step.
  const bool sparsity_only = o.budget.Unbounded() && o.sparsity > 0;
  if (!sparsity_only) EP_RETURN_IF_ERROR(ValidateBudget(o.budget));
  if (!(o.step_fraction > 0.0 && o.step_fraction < 1.0)) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_argument",
                     "step_fraction must be in (0, 1)");
  }
  EP_ASSIGN_OR_RETURN(Prepared m, Prepare(master, o.input_shape, "master"));
  PruneResult result;
  result.master_cost = EstimateCost(m.analysis, {});
  if (data) {
    if (data->train.image_shape() != o.input_shape) {
      return MakeError(ErrorKind::kInvalidArgument, "dataset_mismatch",
                       "data set " + data->train.name + " does not have the model's input shape");
    }
    int64_t classes = m.analysis.output_shape.size() == 2 ? m.analysis.output_shape[1] : -1;
    if (classes != data->train.num_classes()) {
      return MakeError(ErrorKind::kInvalidArgument, "dataset_mismatch",
                       "the model gives " + std::to_string(classes) + " outputs but data set " +
                           data->train.name + " has " +
                           std::to_string(data->train.num_classes()) + " classes");
    }
  }
  std::map<std::string, int64_t> master_widths;
  for (const auto& g : m.analysis.groups) master_widths[g.name] = g.width;

  // Reachable at all? Judge on the master with the final budget (a resumed run was judged).
  if (!sparsity_only && !o.resume) {
    EP_ASSIGN_OR_RETURN(GroupScores scores, Score(m, master, data, o));
    Planner planner(m.analysis, scores, master_widths, o.plan);
    Cost reached;
    EP_RETURN_IF_ERROR(planner.ForBudget(o.budget, &reached));
  }
  torch::jit::Module teacher;
  try {
    std::istringstream in(master);
    teacher = torch::jit::load(in, torch::kCPU);
    teacher.eval();
  } catch (const std::exception& e) {
    return MakeError(ErrorKind::kInvalidArgument, "not_torchscript", "master does not load");
  }

  std::string bytes = master;
  Cost start = result.master_cost;
  if (o.resume) {
    bytes = o.resume->variant;
    result.steps = o.resume->step;
    EP_ASSIGN_OR_RETURN(start, ModelCost(bytes, o.input_shape));
    say("resuming after step " + std::to_string(o.resume->step));
  }
  Progress progress(o, sparsity_only ? 0 : ExpectedSteps(o.budget, start, o.step_fraction),
                    data != nullptr);
  for (int step = result.steps + 1; step <= o.max_steps; ++step) {
    EP_ASSIGN_OR_RETURN(Prepared cur, Prepare(bytes, o.input_shape, "variant"));
    Cost c = EstimateCost(cur.analysis, {});
    if (Fits(o.budget, c)) break;
    Budget target = StepTarget(o.budget, c, o.step_fraction);
    EP_ASSIGN_OR_RETURN(GroupScores scores, Score(cur, bytes, data, o));
    if (o.plan.cost_aware) {
      scores = CostAwareScores(cur.analysis, scores, target, o.plan.traffic_weight);
    }
    Planner planner(cur.analysis, scores, master_widths, o.plan);
    Cost reached;
    auto plan = planner.ForBudget(target, &reached);
    if (!plan.ok()) plan = planner.Removing(planner.MaxRemovable());
    if (plan->empty()) {
      return MakeError(ErrorKind::kFailedPrecondition, "budget_unreachable",
                       "no channel can be removed any more and the budget still does not hold");
    }
    EP_RETURN_IF_ERROR(Shrink(cur.module, cur.analysis, *plan, WithBatch(o.input_shape)));
    EP_RETURN_IF_ERROR(Recalibrate(cur.module, data, o, &result));
    EP_ASSIGN_OR_RETURN(bytes, SaveModuleBytes(cur.module.module));
    result.steps = step;
    std::ostringstream line;
    line << "step " << step << ": " << reached.macs << " MACs, " << reached.param_bytes
         << " parameter bytes, " << reached.peak_activation_bytes << " activation bytes";
    say(line.str());
    progress.Add(1);
    EP_RETURN_IF_ERROR(progress.Report("prune"));
    if (!Fits(o.budget, reached)) {
      EP_ASSIGN_OR_RETURN(bytes, Tune(bytes, &teacher, data, o.between_steps, nullptr,
                                      progress.During("prune"), &result));
    }
    if (data) progress.Add(double(std::max<int64_t>(0, o.between_steps.steps)));
    if (o.on_step) EP_RETURN_IF_ERROR(o.on_step(PruneCheckpoint{step, bytes}));
  }
  std::map<std::string, at::Tensor> masks;
  if (o.sparsity > 0) {
    EP_ASSIGN_OR_RETURN(EvalModule sparse, LoadEvalModule(bytes, "variant"));
    if (o.random_sparsity) {
      EP_ASSIGN_OR_RETURN(masks, ApplyRandomSparsity(sparse.module, o.sparsity, 1));
    } else {
      EP_ASSIGN_OR_RETURN(masks, ApplyMagnitudeSparsity(sparse.module, o.sparsity));
    }
    EP_RETURN_IF_ERROR(Recalibrate(sparse, data, o, &result));
    EP_ASSIGN_OR_RETURN(bytes, SaveModuleBytes(sparse.module));
  }
  if (result.steps > 0 || o.sparsity > 0) {
    say("fine-tuning with distillation");
    EP_RETURN_IF_ERROR(progress.Report("finetune"));
    EP_ASSIGN_OR_RETURN(bytes, Tune(bytes, &teacher, data, o.final_tune,
                                    masks.empty() ? nullptr : &masks, progress.During("finetune"),
                                    &result));
  } else {
    say("the master already fits the budget: nothing removed, nothing to recover");
  }
  if (o.fold_batch_norm) {
    EP_ASSIGN_OR_RETURN(EvalModule emitted, LoadEvalModule(bytes, "variant"));
    EP_ASSIGN_OR_RETURN(result.folded_batch_norms, FoldBatchNorm(emitted, WithBatch(o.input_shape)));
    if (result.folded_batch_norms > 0) {
      EP_ASSIGN_OR_RETURN(bytes, SaveModuleBytes(emitted.module));
    }
  }

  EP_ASSIGN_OR_RETURN(Prepared fin, Prepare(bytes, o.input_shape, "variant"));
  result.cost = EstimateCost(fin.analysis, {});
  result.bounds = CheckBudget(o.budget, result.cost);
  if (!Fits(o.budget, result.cost)) {
    return MakeError(ErrorKind::kFailedPrecondition, "budget_unreachable",
                     "pruning stopped after " + std::to_string(o.max_steps) +
                         " steps without meeting the budget");
  }
  std::map<std::string, int64_t> final_widths;
  for (const auto& l : fin.analysis.layers) {
    if (l.out.size() == 1) final_widths[l.name] = KeptSize(fin.analysis, {}, l.out);
  }
  for (const auto& l : m.analysis.layers) {
    if (l.out.size() != 1) continue;
    auto it = final_widths.find(l.name);
    result.widths.push_back(LayerWidth{l.name, KeptSize(m.analysis, {}, l.out),
                                       it == final_widths.end() ? -1 : it->second});
  }
  result.frozen_ops.assign(m.analysis.frozen_ops.begin(), m.analysis.frozen_ops.end());
  result.sparsity = WeightSparsity(fin.module.module);
  EP_ASSIGN_OR_RETURN(std::string packed, Compress(bytes));
  result.compressed_bytes = static_cast<int64_t>(packed.size());
  result.variant = std::move(bytes);
  return result;
}

}  // namespace edgeprune::pruning
