#pragma once
// The training loop for TorchScript modules (masters from the zoo, models from PyTorch, pruned
// variants being fine-tuned): cross-entropy, SGD with momentum or Adam, cosine learning-rate
// schedule per step, seeded shuffling/augmentation, one progress line per epoch.
//
// Thread-safety: trains `module` in place; nothing else may use it meanwhile.

#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/models/dataset.hpp"

namespace edgeprune::models {

struct EpochReport {
  int epoch = 0;                      // 1-based
  int epochs = 0;
  double train_loss = 0.0;            // mean over the epoch's batches
  double train_accuracy = 0.0;        // on the augmented training batches, 0..1
  double validation_accuracy = -1.0;  // 0..1, -1 when no validation set
  double learning_rate = 0.0;         // at the end of the epoch
  double seconds = 0.0;               // this epoch
  double eta_seconds = 0.0;           // estimated time left
};

struct TrainOptions {
  int epochs = 10;
  std::int64_t batch_size = 128;
  std::string optimizer = "adam";     // "adam" or "sgd" (with Nesterov-free momentum)
  double learning_rate = 1e-3;        // peak; cosine-decayed to min_lr_fraction × peak
  double min_lr_fraction = 0.0;
  int warmup_steps = 0;               // linear warm-up before the cosine
  double momentum = 0.9;              // sgd only
  double weight_decay = 0.0;          // L2 (sgd) / decoupled-free L2 (adam)
  double label_smoothing = 0.0;
  bool augment = false;               // random horizontal flip + shift by up to 2 px
  std::uint64_t seed = 1;
  int threads = 0;                    // intra-op threads; 0 keeps the current setting
  std::int64_t max_steps_per_epoch = 0;  // 0 = whole epoch (tests use a few steps)
  // Called after each epoch; default logs one line on the "models" logger.
  std::function<void(const EpochReport&)> on_epoch;
};

struct TrainReport {
  std::vector<EpochReport> epochs;
  double seconds = 0.0;
  std::int64_t steps = 0;
};

// Errors: options out of range ("invalid_argument"), the module does not run on the training
// images' shape or its output does not have one logit per class ("invalid_model"), a non-finite
// loss ("training_diverged"). Leaves the module in eval mode.
Result<TrainReport> Train(torch::jit::Module& module, const Dataset& train,
                          const Dataset* validation, const TrainOptions& options);

}  // namespace edgeprune::models
