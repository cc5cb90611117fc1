#pragma once
// The cost model over a TorchScript graph. The forward graph is inlined (submodule calls become
// their bodies), every intermediate tensor is made an output, and the graph runs once on zeros
// of the declared input shape at batch 1 in eval mode: shapes are exact for any control flow the
// model takes on that input, and each aten op node is costed by cost_report.hpp's conventions.
//
// Thread-safety: runs the module's forward; do not run it concurrently with training.

#include <torch/script.h>

#include <cstdint>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/models/cost_report.hpp"

namespace edgeprune::models {

// input_shape is {C, H, W} (no batch). Errors ("invalid_model") when the forward fails on that
// shape or the module has no parameters.
Result<CostReport> EstimateCost(torch::jit::Module& module,
                                const std::vector<std::int64_t>& input_shape);

}  // namespace edgeprune::models
