#pragma once
// Recovery after pruning: fine-tuning with knowledge distillation from the master (soft targets
// at temperature T plus hard labels), SGD with momentum, a short linear warm-up then a cosine
// learning-rate schedule, and gradient-norm clipping, bounded by a step count and a time limit.
// The schedule follows whichever bound is nearer (steps done / steps, or time spent / seconds,
// the latter only once the run is on course to hit its time limit), so a run cut by its time limit
// still ends at a learning rate near zero, and a run that is not is reproducible.
// Optional augmentation of each training batch (random shifts, horizontal flips) and optional
// masks that keep unstructured zeros at zero.
//
// Thread-safety: trains `student` in place; nothing else may use it (or the teacher) meanwhile.

#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "edgeprune/common/result.hpp"
#include "server/models/dataset.hpp"
#include "server/pruning/eval_graph.hpp"

namespace edgeprune::pruning {

struct FinetuneOptions {
  int64_t steps = 300;       // upper bound on optimizer steps
  double seconds = 60.0;     // upper bound on wall time
  // Batch 128 at peak 0.05 recovered most in a fixed time on the VGG-style master (docs/benchmarks.md,
  // "recovery recipe"): -0.27 pt at 4x MACs against -0.88 pt with batch 64 at 0.01.
  int64_t batch_size = 128;
  double learning_rate = 0.05;  // peak, reached after warm-up, cosine-decayed to 0
  double warmup = 0.02;         // share of the budget spent ramping the learning rate up
  double momentum = 0.9;
  double weight_decay = 5e-4;
  // Gradients are scaled down to this global L2 norm when larger (0 = never). With fixed
  // batch-norm statistics, channels with tiny running variance otherwise blew up the step at the
  // default learning rate (ResNet and MobileNet masters diverged in ~10 steps).
  double max_grad_norm = 5.0;
  // Batch norms run as in training: each batch is normalized with its own statistics, and the
  // running statistics follow the network as it changes (moving average with `bn_momentum`).
  // Off: the evaluation-mode graph, whose statistics stay those of the last re-estimation while
  // the weights move under them. On by default: it recovered as much or more on every zoo master
  // with batch norms, and it kept a 1-D signal variant that the fixed statistics let collapse to
  // chance (docs/benchmarks/pruning.md, "Recovery: batch norms in training mode").
  bool train_batch_norm = true;
  double bn_momentum = 0.1;
  double kd_alpha = 0.5;     // weight of the distillation term; 0 = labels only
  double temperature = 4.0;
  uint64_t seed = 1;
  // Augmentation of [N, C, H, W] batches: each image moved by up to this many pixels in each
  // direction (the border filled with the batch's background, its smallest value), and mirrored
  // left-right with probability 1/2. Off by default: only label-preserving for some data sets
  // (Fashion-MNIST: yes; digits: no flips).
  int64_t shift_pixels = 0;
  bool horizontal_flip = false;
  // Parameter path → 0/1 mask re-applied after every step (unstructured sparsity).
  const std::map<std::string, at::Tensor>* masks = nullptr;
  // Told the steps done every `report_every` steps, so a job can show progress and be cancelled
  // inside a long run: an error it returns stops fine-tuning and is returned.
  std::function<Status(int64_t steps_done)> on_progress = nullptr;
  int64_t report_every = 50;
};

struct FinetuneReport {
  int64_t steps = 0;
  double seconds = 0.0;
  double last_loss = 0.0;
  bool time_limited = false;  // stopped by `seconds` before its steps were done
};

// teacher may be null (labels only). Errors "finetune_failed" naming LibTorch's reason
// (e.g. data that does not fit the model), "training_diverged" on a non-finite loss.
Result<FinetuneReport> Finetune(EvalModule& student, torch::jit::Module* teacher,
                                const models::Dataset& train, const FinetuneOptions& options);

}  // namespace edgeprune::pruning
