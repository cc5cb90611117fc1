#pragma once
// The pruning pipeline for one variant: analyse the master, check the budget is reachable at
// minimum widths, then NetAdapt-style steps — each step lowers the violated bounds by at most
// `step_fraction`, re-scores channels on the current variant, shrinks it physically and
// fine-tunes briefly — until every bound holds; then a final distillation fine-tune and optional
// unstructured sparsity. Batch-norm statistics are re-estimated on calibration batches after every
// structural change and after masking (the evaluation-mode fine-tuning never updates them), and
// the emitted variant has its batch norms folded into the convolutions that feed them, and its
// cost is measured again on the emitted bytes before the budget is declared met. Each step can be
// handed out as a checkpoint and a later run resumed from it; nothing pruned means nothing to
// recover, so a master that already fits is emitted without fine-tuning.
//
// Thread-safety: Prune() is reentrant; it touches only its own copies of the models.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/result.hpp"
#include "server/models/dataset.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/finetune.hpp"
#include "server/pruning/importance.hpp"
#include "server/pruning/planner.hpp"

namespace edgeprune::pruning {

// The variant after a pruning step (shrunk, re-estimated, briefly tuned): enough to resume.
struct PruneCheckpoint {
  int step = 0;         // pruning steps done
  std::string variant;  // TorchScript bytes
};

struct PruneOptions {
  std::vector<int64_t> input_shape;  // {C, H, W}
  Budget budget;
  Criterion criterion = Criterion::kTaylor;
  PlanOptions plan;
  double step_fraction = 0.5;  // each step lowers a violated bound by at most this share
  int max_steps = 20;
  int calibration_batches = 8;
  FinetuneOptions between_steps{.steps = 100, .seconds = 20.0};
  // The recipe that meets the 4x target inside 3 minutes on 2 cores (docs/benchmarks.md).
  FinetuneOptions final_tune{.steps = 6000, .seconds = 140.0};
  double sparsity = 0.0;  // unstructured, on top; 0 = none. Alone (no bound): a baseline.
  bool random_sparsity = false;  // random instead of magnitude (the classic baseline)
  // Batches of 64 calibration images that re-estimate batch-norm statistics after each shrink
  // and after masking; 0 = keep the master's statistics (the classic "no recovery" baseline).
  int bn_recalibration_batches = 8;
  bool fold_batch_norm = true;  // fold batch norms into convolutions in the emitted variant
  std::function<void(const std::string&)> progress;
  // Start from an earlier run's checkpoint instead of the master; its steps count as done.
  std::optional<PruneCheckpoint> resume;
  // Called after each pruning step with the variant so far; an error stops the run.
  std::function<Status(const PruneCheckpoint&)> on_step;
  // Progress for schedulers: the phase ("prune", "finetune") and the share of the run's planned
  // work done (0..1, pruning steps and fine-tuning steps); an error stops the run (cancel).
  std::function<Status(std::string_view phase, double fraction)> on_progress;
};

struct LayerWidth {
  std::string name;  // producing weight's path
  int64_t master = 0;
  int64_t kept = 0;
};

struct PruneResult {
  std::string variant;  // TorchScript bytes
  Cost master_cost;
  Cost cost;
  std::vector<BoundCheck> bounds;
  std::vector<LayerWidth> widths;
  std::vector<std::string> frozen_ops;
  int steps = 0;                   // pruning steps done, those of a resumed checkpoint included
  int64_t finetune_steps = 0;      // done, between steps and final
  int64_t planned_finetune_steps = 0;  // what the step counts asked for the steps taken
  double finetune_seconds = 0.0;
  bool time_limited = false;  // some fine-tuning was cut by its time limit before its steps
  double sparsity = 0.0;         // achieved, among weights
  int64_t compressed_bytes = 0;  // zlib of `variant`
  int recalibrations = 0;        // batch-norm re-estimations done (each over every batch norm)
  int folded_batch_norms = 0;    // batch norms folded into convolutions or linear layers
};

// Cost of a model as it stands; input_shape {C, H, W}.
Result<Cost> ModelCost(const std::string& bytes, const std::vector<int64_t>& input_shape);

// data may be null: no fine-tuning (and the criterion must not need calibration).
Result<PruneResult> Prune(const std::string& master, const models::DatasetSplits* data,
                          const PruneOptions& options);

}  // namespace edgeprune::pruning
