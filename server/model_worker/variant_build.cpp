#include "server/model_worker/variant_build.hpp"

#include <torch/script.h>

#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

#include "edgeprune/common/log.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/dataset.hpp"
#include "server/models/evaluate.hpp"
#include "server/models/torchscript.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/importance.hpp"
#include "server/pruning/pipeline.hpp"
#include "server/pruning/planner.hpp"

namespace edgeprune::model_worker {
// This file adapts the pruning engine; its vocabulary (Cost, PruneOptions, Prune…) is used throughout.
using namespace edgeprune::pruning;
namespace {

// A build checkpoint: one header line (the variant's cost, then the pruning steps done), then the
// TorchScript bytes of the variant after that step. A header without the step count (written by
// the one-shot builds) counts as one step.
constexpr std::string_view kCheckpointTag = "edgeprune-build-checkpoint/1";

std::string EncodeCheckpoint(const Cost& cost, const PruneCheckpoint& cp) {
  return std::string(kCheckpointTag) + " " + std::to_string(cost.params) + " " +
         std::to_string(cost.param_bytes) + " " + std::to_string(cost.macs) + " " +
         std::to_string(cost.peak_activation_bytes) + " " + std::to_string(cp.step) + "\n" +
         cp.variant;
}

// The checkpoint in `bytes`, or nullopt when they are not one.
std::optional<PruneCheckpoint> DecodeCheckpoint(const std::string& bytes) {
  const auto eol = bytes.find('\n');
  if (eol == std::string::npos || bytes.compare(0, kCheckpointTag.size(), kCheckpointTag) != 0) {
    return std::nullopt;
  }
  std::istringstream header(bytes.substr(kCheckpointTag.size(), eol - kCheckpointTag.size()));
  Cost cost;
  if (!(header >> cost.params >> cost.param_bytes >> cost.macs >> cost.peak_activation_bytes) ||
      cost.param_bytes <= 0 || cost.macs < 0 || cost.peak_activation_bytes < 0) {
    return std::nullopt;
  }
  PruneCheckpoint cp;
  if (!(header >> cp.step)) cp.step = 1;
  if (cp.step < 1) return std::nullopt;
  cp.variant = bytes.substr(eol + 1);
  return cp;
}

// The checkpoint of an earlier attempt when it holds a model that loads and analyses; anything
// else is logged and ignored (the build starts from the master).
std::optional<PruneCheckpoint> Resumable(const std::optional<std::string>& resume,
                                         const std::vector<std::int64_t>& chw) {
  if (!resume) return std::nullopt;
  auto cp = DecodeCheckpoint(*resume);
  if (!cp) {
    log::Get("pruning")->warn("ignoring a checkpoint in an unknown format");
    return std::nullopt;
  }
  if (auto cost = ModelCost(cp->variant, chw); !cost.ok()) {
    log::Get("pruning")->warn("ignoring an unusable checkpoint: {}", cost.error().ToString());
    return std::nullopt;
  }
  return cp;
}

std::vector<std::int64_t> WithoutBatch(const std::vector<std::int64_t>& shape) {
  return std::vector<std::int64_t>(shape.begin() + 1, shape.end());
}

// The CLI's recipe (PruneOptions' defaults) with the server's settings on top.
Result<PruneOptions> ToPruneOptions(const catalog::VariantBuildOptions& options,
                                    const catalog::BuildRequest& r) {
  PruneOptions po;
  po.input_shape = WithoutBatch(r.input_shape);
  po.budget = r.budget;
  EP_ASSIGN_OR_RETURN(po.criterion, ParseCriterion(options.importance));
  po.step_fraction = options.step_fraction;
  po.max_steps = static_cast<int>(options.max_prune_steps);
  po.between_steps.steps = options.step_finetune_steps;
  po.between_steps.seconds = options.step_finetune_seconds;
  po.between_steps.batch_size = options.batch_size;
  po.final_tune.steps = options.finetune_steps;
  po.final_tune.seconds = options.finetune_seconds;
  po.final_tune.batch_size = options.batch_size;
  po.between_steps.train_batch_norm = options.train_batch_norm;
  po.final_tune.train_batch_norm = options.train_batch_norm;
  return po;
}

Result<catalog::BuildOutcome> Build(const catalog::VariantBuildOptions& options,
                                     const catalog::BuildRequest& r) {
  auto progress = [&](std::string_view phase, double pct) -> Status {
    return r.progress ? r.progress(phase, pct) : Ok();
  };
  EP_RETURN_IF_ERROR(progress("load", 0));
  if (options.threads > 0) models::SetIntraOpThreads(static_cast<int>(options.threads));
  models::SplitOptions split;
  split.train_limit = options.train_limit;
  split.test_limit = options.test_limit;
  split.validation_size = options.train_limit > 0 ? std::min<std::int64_t>(1000, options.train_limit / 5)
                                                  : 5000;
  EP_ASSIGN_OR_RETURN(models::DatasetSplits data,
                      models::LoadDataset(r.dataset, options.dataset_dir, split));
  if (data.test.num_classes() != r.num_classes) {
    return MakeError(ErrorKind::kFailedPrecondition, "dataset_mismatch",
                     "dataset " + r.dataset + " has " + std::to_string(data.test.num_classes()) +
                         " classes; the model has " + std::to_string(r.num_classes));
  }
  EP_ASSIGN_OR_RETURN(std::string master, ReadModelBytes(r.master_path));
  const std::vector<std::int64_t> chw = WithoutBatch(r.input_shape);

  EP_ASSIGN_OR_RETURN(PruneOptions po, ToPruneOptions(options, r));
  po.resume = Resumable(r.resume, chw);
  if (po.resume) {
    log::Get("pruning")->info("resuming the build of {} after pruning step {}", r.output_path,
                              po.resume->step);
  } else {
    EP_RETURN_IF_ERROR(progress("analyze", 5));
  }
  po.progress = [&r](const std::string& line) {
    log::Get("pruning")->info("{}: {}", r.output_path, line);
  };
  // The engine's phases take 5..85 of the build; evaluating and saving the rest.
  po.on_progress = [&](std::string_view phase, double fraction) {
    return progress(phase, 5.0 + 80.0 * fraction);
  };
  po.on_step = [&](const PruneCheckpoint& cp) -> Status {
    if (!r.checkpoint) return Ok();
    EP_ASSIGN_OR_RETURN(Cost cost, ModelCost(cp.variant, chw));
    if (auto saved = r.checkpoint(EncodeCheckpoint(cost, cp)); !saved.ok()) {
      // The build goes on; only a later retry loses the shortcut.
      log::Get("pruning")->warn("checkpoint not saved: {}", saved.error().ToString());
    }
    return Ok();
  };
  auto result = Prune(master, &data, po);
  // The default per-layer floor protects accuracy; a device whose budget only a thinner network
  // meets still gets one, down to a 10 % floor, rather than no variant at all.
  if (!result.ok() && result.error().code == "budget_unreachable" &&
      po.plan.min_keep_ratio > kLowestKeepRatio) {
    log::Get("pruning")->info("{}: {}; trying the {} per-layer floor", r.output_path,
                              result.error().message, kLowestKeepRatio);
    po.plan.min_keep_ratio = kLowestKeepRatio;
    result = Prune(master, &data, po);
  }
  if (!result.ok()) return result.error();
  EP_RETURN_IF_ERROR(WriteFileAtomically(r.output_path, result->variant));

  // What ships is measured again as written (batch norms folded), not taken from the plan.
  EP_RETURN_IF_ERROR(progress("evaluate", 85));
  EP_ASSIGN_OR_RETURN(std::string written, ReadModelBytes(r.output_path));
  EP_ASSIGN_OR_RETURN(Cost measured, ModelCost(written, chw));
  if (!Fits(r.budget, measured)) {
    std::string why;
    for (const auto& b : CheckBudget(r.budget, measured)) {
      if (!b.ok) why += " " + b.name + " " + std::to_string(b.value) + " > " + std::to_string(b.limit);
    }
    return MakeError(ErrorKind::kFailedPrecondition, "budget_exceeded",
                     "the emitted variant does not fit its budget:" + why);
  }
  EP_ASSIGN_OR_RETURN(EvalModule teacher, LoadEvalModule(master, "master"));
  EP_ASSIGN_OR_RETURN(models::AccuracyResult master_acc,
                      models::EvaluateAccuracy(teacher.module, data.test));
  EP_ASSIGN_OR_RETURN(EvalModule emitted, LoadEvalModule(written, "variant"));
  EP_ASSIGN_OR_RETURN(models::AccuracyResult acc,
                      models::EvaluateAccuracy(emitted.module, data.test));
  EP_RETURN_IF_ERROR(progress("done", 100));

  catalog::BuildOutcome o;
  o.parameters = measured.param_bytes / 4;
  o.macs = measured.macs;
  o.activation_bytes = measured.peak_activation_bytes;
  o.accuracy = acc.accuracy;
  o.master_accuracy = master_acc.accuracy;
  o.normalize_mean = data.test.normalization.mean;
  o.normalize_std = data.test.normalization.std;
  o.pruning_steps = result->steps;
  o.finetune_steps = result->finetune_steps;
  o.finetune_steps_planned = result->planned_finetune_steps;
  o.min_keep_ratio = po.plan.min_keep_ratio;
  return o;
}

}  // namespace

catalog::BuildVariantFn MakeVariantBuilder(catalog::VariantBuildOptions options) {
  return [options](const catalog::BuildRequest& r) -> Result<catalog::BuildOutcome> {
    try {
      return Build(options, r);
    } catch (const std::exception& e) {
      std::string what = e.what();
      what = what.substr(0, what.find('\n'));
      return MakeError(ErrorKind::kInternal, "build_failed",
                       "building from " + r.master_path + ": " + what);
    }
  };
}

}  // namespace edgeprune::model_worker
