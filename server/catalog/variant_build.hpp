#pragma once
// What building one variant takes and gives, free of LibTorch so server_core can schedule builds
// without its headers. The LibTorch implementation (prune to the budget, fine-tune, evaluate,
// save) sits behind BuildVariantFn; see server/model_worker/variant_build.hpp.
//
// Thread-safety: plain value types.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::catalog {

struct BuildRequest {
  std::string master_path;               // TorchScript file of the master
  std::vector<std::int64_t> input_shape;  // with batch 1: [1, C, H, W]
  std::int64_t num_classes = 0;
  std::string dataset;                    // dataset name, e.g. "fashion-mnist" or "synthetic"
  Budget budget;                          // what the variant must fit
  std::string work_dir;                   // empty directory for intermediate files
  std::string output_path;                // where to save the variant (TorchScript)
  // Reports progress (phase, 0..100); returns an error when the build must stop (cancel/shutdown).
  std::function<Status(std::string_view phase, double percent)> progress;
  // Resumable state: the builder hands `checkpoint` opaque bytes after every pruning step (each
  // replaces the one before); a later attempt of the same build passes the last back in `resume`
  // and goes on after that step. A checkpoint the builder does not recognise is ignored (full
  // build).
  std::function<Status(std::string_view bytes)> checkpoint;
  std::optional<std::string> resume;
};

struct BuildOutcome {
  // Measured on the emitted file, as shipped.
  std::int64_t parameters = 0;
  std::int64_t macs = 0;
  std::int64_t activation_bytes = 0;
  double accuracy = 0.0;        // on the dataset's evaluation split
  double master_accuracy = 0.0;
  std::vector<double> normalize_mean;  // per channel; empty: none
  std::vector<double> normalize_std;
  std::int64_t pruning_steps = 0;           // those of a resumed checkpoint included
  std::int64_t finetune_steps = 0;          // done, between pruning steps and final
  std::int64_t finetune_steps_planned = 0;  // asked; more than done: a time limit cut a run
  double min_keep_ratio = 0.0;  // per-layer floor the pruning ran with (lowered for small budgets)
};

// Plain fields only: they cross a process boundary (worker protocol). Step counts decide
// a variant's quality; the time limits are safety stops whose hits are reported in BuildOutcome
// (finetune_steps below finetune_steps_planned), so the defaults sit far above the step counts'
// time on an idle machine.
struct VariantBuildOptions {
  std::string dataset_dir;           // for "fashion-mnist"; empty: the Debian default path
  std::int64_t train_limit = 0;      // 0 = whole split (tests and --fast use a few thousand)
  std::int64_t test_limit = 0;
  std::int64_t finetune_steps = 3500;     // final fine-tuning with distillation
  double finetune_seconds = 900.0;        // its time limit
  std::int64_t batch_size = 128;
  std::string importance = "taylor";      // channel scores: l1, l2, bn or taylor
  double step_fraction = 0.5;             // share of a violated bound removed per pruning step
  std::int64_t max_prune_steps = 20;
  std::int64_t step_finetune_steps = 100;  // fine-tuning after each pruning step
  double step_finetune_seconds = 60.0;     // its time limit
  std::int64_t threads = 0;               // LibTorch intra-op threads (process-wide); 0: as is
  bool train_batch_norm = true;           // batch norms in training mode (the CLI's default)
};

using BuildVariantFn = std::function<Result<BuildOutcome>(const BuildRequest&)>;

// What the server needs to know about a master at upload: its validated facts.
struct MasterFacts {
  std::int64_t num_classes = 0;
  std::int64_t parameters = 0;
  std::int64_t macs = 0;
  std::int64_t activation_bytes = 0;
};

// Loads the file as TorchScript and runs one forward pass on input_shape (with batch 1).
// "invalid_model" (kInvalidArgument) naming the reason when it is not TorchScript, does not run on
// that shape or gives the wrong output.
using ValidateMasterFn = std::function<Result<MasterFacts>(
    const std::string& path, const std::vector<std::int64_t>& input_shape,
    std::int64_t expected_classes)>;

}  // namespace edgeprune::catalog
