#include "server/pruning/variant_build.hpp"

#include <torch/script.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

#include "edgeprune/common/log.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/dataset.hpp"
#include "server/models/evaluate.hpp"
#include "server/models/torchscript.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/batch_norm.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/finetune.hpp"
#include "server/pruning/importance.hpp"
#include "server/pruning/planner.hpp"
#include "server/pruning/shrink.hpp"

namespace edgeprune::pruning {
namespace {

// A build checkpoint: one header line with the pruned model's cost, then its TorchScript bytes.
constexpr std::string_view kCheckpointTag = "edgeprune-build-checkpoint/1";

std::string EncodeCheckpoint(const Cost& cost, const std::string& module_bytes) {
  return std::string(kCheckpointTag) + " " + std::to_string(cost.params) + " " +
         std::to_string(cost.param_bytes) + " " +
         std::to_string(cost.macs) + " " + std::to_string(cost.peak_activation_bytes) + "\n" +
         module_bytes;
}

// The cost and module bytes of a checkpoint, or nullopt when the bytes are not one.
std::optional<std::pair<Cost, std::string>> DecodeCheckpoint(const std::string& bytes) {
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
  return std::make_pair(cost, bytes.substr(eol + 1));
}

std::vector<std::int64_t> WithoutBatch(const std::vector<std::int64_t>& shape) {
  return std::vector<std::int64_t>(shape.begin() + 1, shape.end());
}

Result<variants::BuildOutcome> Build(const VariantBuildOptions& options,
                                     const variants::BuildRequest& r) {
  auto progress = [&](const char* phase, double pct) -> Status {
    return r.progress ? r.progress(phase, pct) : Ok();
  };
  EP_RETURN_IF_ERROR(progress("load", 0));
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
  EP_ASSIGN_OR_RETURN(std::string bytes, ReadModelBytes(r.master_path));
  EP_ASSIGN_OR_RETURN(EvalModule teacher, LoadEvalModule(bytes, "teacher"));
  EP_ASSIGN_OR_RETURN(models::AccuracyResult master_acc,
                      models::EvaluateAccuracy(teacher.module, data.test));

  // Resume from the pruned model of an earlier attempt when there is a usable checkpoint.
  std::optional<EvalModule> resumed;
  Cost reached;
  if (r.resume) {
    if (auto cp = DecodeCheckpoint(*r.resume)) {
      auto loaded = LoadEvalModule(cp->second, "checkpoint");
      if (loaded.ok()) {
        resumed = std::move(loaded).value();
        reached = cp->first;
        log::Get("pruning")->info("resuming the build of {} from its pruned checkpoint",
                                  r.output_path);
      } else {
        log::Get("pruning")->warn("ignoring an unusable checkpoint: {}",
                                  loaded.error().ToString());
      }
    } else {
      log::Get("pruning")->warn("ignoring a checkpoint in an unknown format");
    }
  }
  EvalModule student;
  if (resumed) {
    student = std::move(*resumed);
  } else {
    EP_ASSIGN_OR_RETURN(student, LoadEvalModule(bytes, "master"));
    EP_RETURN_IF_ERROR(progress("analyze", 5));
    EP_ASSIGN_OR_RETURN(Analysis analysis, Analyze(student, r.input_shape));
    EP_ASSIGN_OR_RETURN(GroupScores scores, ScoreChannels(student, analysis, Criterion::kL1));
    scores = CostAwareScores(analysis, scores, r.budget);
    // The default per-layer floor protects accuracy; a device whose budget only a thinner network
    // meets still gets one, down to a 10 % floor, rather than no variant at all.
    PlanOptions plan_options;
    auto plan = Planner(analysis, scores, {}, plan_options).ForBudget(r.budget, &reached);
    if (!plan.ok() && plan.error().code == "budget_unreachable" &&
        plan_options.min_keep_ratio > kLowestKeepRatio) {
      plan_options.min_keep_ratio = kLowestKeepRatio;
      plan = Planner(analysis, scores, {}, plan_options).ForBudget(r.budget, &reached);
    }
    if (!plan.ok()) return plan.error();

    EP_RETURN_IF_ERROR(progress("prune", 15));
    EP_RETURN_IF_ERROR(Shrink(student, analysis, *plan, r.input_shape));
    // Fine-tuning runs the evaluation-mode graph, which never updates batch-norm statistics:
    // match them to the pruned network first.
    const models::Dataset& calibration =
        data.calibration.size() > 0 ? data.calibration : data.train;
    EP_ASSIGN_OR_RETURN(int recalibrated,
                        RecalibrateBatchNorm(student, calibration.images, options.batch_size, 8));
    (void)recalibrated;
    if (r.checkpoint) {
      EP_ASSIGN_OR_RETURN(std::string pruned, SaveModuleBytes(student.module));
      if (auto saved = r.checkpoint(EncodeCheckpoint(reached, pruned)); !saved.ok()) {
        // The build goes on; only a later retry loses the shortcut.
        log::Get("pruning")->warn("checkpoint not saved: {}", saved.error().ToString());
      }
    }
  }

  EP_RETURN_IF_ERROR(progress("finetune", 20));
  FinetuneOptions ft;
  ft.steps = options.finetune_steps;
  ft.seconds = options.finetune_seconds;
  ft.batch_size = options.batch_size;
  EP_ASSIGN_OR_RETURN(FinetuneReport report,
                      Finetune(student.module, &teacher.module, data.train, ft));
  (void)report;
  // Batch norms folded into the convolutions: one operator less each on the device. Folding
  // rewrites the graph, so it works on a fresh copy (the fine-tuned one already ran).
  EP_ASSIGN_OR_RETURN(std::string tuned, SaveModuleBytes(student.module));
  EP_ASSIGN_OR_RETURN(EvalModule emitted, LoadEvalModule(tuned, "variant"));
  EP_ASSIGN_OR_RETURN(int folded, FoldBatchNorm(emitted));
  (void)folded;

  EP_RETURN_IF_ERROR(progress("evaluate", 85));
  EP_ASSIGN_OR_RETURN(models::AccuracyResult acc,
                      models::EvaluateAccuracy(emitted.module, data.test));
  EP_ASSIGN_OR_RETURN(std::string out, SaveModuleBytes(emitted.module));
  EP_RETURN_IF_ERROR(WriteFileAtomically(r.output_path, out));
  EP_RETURN_IF_ERROR(progress("done", 100));

  variants::BuildOutcome o;
  o.parameters = reached.param_bytes / 4;
  o.macs = reached.macs;
  o.activation_bytes = reached.peak_activation_bytes;
  o.accuracy = acc.accuracy;
  o.master_accuracy = master_acc.accuracy;
  o.normalize_mean = data.test.normalization.mean;
  o.normalize_std = data.test.normalization.std;
  return o;
}

}  // namespace

variants::BuildVariantFn MakeVariantBuilder(VariantBuildOptions options) {
  return [options](const variants::BuildRequest& r) -> Result<variants::BuildOutcome> {
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

variants::ValidateMasterFn MakeMasterValidator() {
  return [](const std::string& path, const std::vector<std::int64_t>& input_shape,
            std::int64_t expected_classes) -> Result<variants::MasterFacts> {
    try {
      EP_ASSIGN_OR_RETURN(torch::jit::Module module, models::LoadModule(path));
      const auto chw = WithoutBatch(input_shape);
      EP_ASSIGN_OR_RETURN(models::ModuleCheck check,
                          models::CheckModule(module, chw, "the uploaded model", expected_classes));
      EP_ASSIGN_OR_RETURN(models::CostReport cost, models::EstimateCost(module, chw));
      variants::MasterFacts facts;
      facts.num_classes = check.num_classes;
      facts.parameters = (cost.param_bytes + cost.buffer_bytes) / 4;
      facts.macs = cost.macs;
      facts.activation_bytes = cost.peak_activation_bytes;
      return facts;
    } catch (const std::exception& e) {
      std::string what = e.what();
      return MakeError(ErrorKind::kInvalidArgument, "invalid_model",
                       "the uploaded model: " + what.substr(0, what.find('\n')));
    }
  };
}

}  // namespace edgeprune::pruning
