#pragma once
// Batch-norm maintenance on a prepared (evaluation-mode, inlined) module:
//  - re-estimating the running statistics on calibration batches after the network changed under
//    them (channels removed, weights masked), since the evaluation-mode graph never updates them;
//  - folding an evaluation-mode batch norm into the convolution or linear layer that feeds it, so the emitted
//    variant runs one operator where the master ran two.
//
// Thread-safety: both functions mutate the EvalModule in place; nothing else may use it meanwhile.

#include <cstdint>
#include <memory>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/pruning/eval_graph.hpp"

namespace edgeprune::pruning {

// Replaces the running mean and variance of every batch norm of the forward graph (top block,
// with tensor running statistics) by their average over up to `max_batches` batches of `images`
// ([N, C, H, W], already normalized), each layer seeing the batch-normalized outputs of the
// layers before it (the training-mode forward pass, with dropout still off). Weights are not
// touched. Returns the number of batch norms re-estimated (0 when there are none or no images).
// Errors "calibration_failed" when the images do not fit the model (nothing is changed then).
Result<int> RecalibrateBatchNorm(EvalModule& m, const at::Tensor& images, int64_t batch_size,
                                 int max_batches);

// A copy of the module's forward graph whose batch norms (those with tensor running statistics)
// run in training mode with `momentum`: run on the module's `self`, each forward pass normalizes
// with the batch's own statistics and moves the module's running buffers toward them in place.
// `switched` (optional) receives how many batch norms were switched.
std::shared_ptr<torch::jit::Graph> TrainingModeGraph(const EvalModule& m, double momentum,
                                                     int* switched = nullptr);

// Folds every batch norm whose input is a non-transposed convolution or a linear layer used by
// nothing else (shape queries aside) into that layer: weight·γ/√(var+ε) and
// (bias − mean)·γ/√(var+ε) + β, row by row of the weight's output axis. A layer without a
// bias tensor takes the folded bias in the batch norm's β (or, without β, its running mean)
// tensor, read through a new attribute access. The batch norm's other tensors stay in the module
// unused (the model's size does not change). Batch norms whose tensors are read elsewhere are
// left alone. Returns the number folded; outputs equal the unfolded module's up to rounding.
// Rewrites the forward graph: call it before the module's forward first runs (a method keeps
// the graph it first ran with); a module that already ran is saved and loaded again first.
// input_shape (with batch) is what the model runs on: a linear layer's batch norm is folded only
// when that layer's output is [N, F] (on [N, C, L] the two act on different axes).
Result<int> FoldBatchNorm(EvalModule& m, const std::vector<int64_t>& input_shape);

}  // namespace edgeprune::pruning
