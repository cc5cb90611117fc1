#pragma once
// Physical shrink: replaces every parameter and buffer touched by a pruned group with its kept
// slices (index_select, no masks) and rewrites the graph constants that follow channel counts, so
// the module is a genuinely smaller TorchScript model that loads anywhere.
//
// Thread-safety: mutates the EvalModule in place; nothing else may use it meanwhile.

#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/eval_graph.hpp"

namespace edgeprune::pruning {

// Applies `plan` (made from `analysis` of this very module). After success the analysis no
// longer describes the module. Checks the result runs on input_shape (with batch) and gives the
// analysis' output shape; errors "shrink_failed" otherwise.
Status Shrink(EvalModule& m, const Analysis& analysis, const KeepPlan& plan,
              const std::vector<int64_t>& input_shape);

// The indices of one parameter axis that survive `plan`.
std::vector<int64_t> KeptIndices(const Analysis& a, const KeepPlan& plan, const Layout& layout);

}  // namespace edgeprune::pruning
