#pragma once
// Batch-norm maintenance on a prepared (evaluation-mode, inlined) module:
//  - re-estimating the running statistics on calibration batches after the network changed under
//    them (channels removed, weights masked), since the evaluation-mode graph never updates them;
//  - folding an evaluation-mode batch norm into the convolution that feeds it, so the emitted
//    variant runs one operator where the master ran two.
//
// Thread-safety: both functions mutate the EvalModule in place; nothing else may use it meanwhile.

#include <cstdint>

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

// Folds every batch norm whose input is a non-transposed convolution used by nothing else (shape
// queries aside) into that convolution: weight·γ/√(var+ε) and (bias − mean)·γ/√(var+ε) + β. A convolution without a
// bias tensor takes the folded bias in the batch norm's β (or, without β, its running mean)
// tensor, read through a new attribute access. The batch norm's other tensors stay in the module
// unused (the model's size does not change). Batch norms whose tensors are read elsewhere are
// left alone. Returns the number folded; outputs equal the unfolded module's up to rounding.
// Rewrites the forward graph: call it before the module's forward first runs (a method keeps
// the graph it first ran with); a module that already ran is saved and loaded again first.
Result<int> FoldBatchNorm(EvalModule& m);

}  // namespace edgeprune::pruning
