#pragma once
// Channel importance per prunable group: L1 or L2 magnitude aggregated over every tensor slice
// of the group (producers' outputs, batch-norm entries, consumers' inputs), batch-norm scale
// |gamma|, or first-order Taylor |Σ w·∂L/∂w| from calibration batches. Scores are normalized to a
// mean of 1 within each group so one global ranking can compare layers.
//
// Thread-safety: pure functions over the given module (read only).

#include <map>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/models/dataset.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/eval_graph.hpp"

namespace edgeprune::pruning {

enum class Criterion { kL1, kL2, kBnScale, kTaylor };

Result<Criterion> ParseCriterion(const std::string& name);  // "l1", "l2", "bn", "taylor"
const char* CriterionName(Criterion c);

using GroupScores = std::map<int, std::vector<double>>;  // group root → score per channel

// `saliency` (from TaylorSaliency) is required for kTaylor and ignored otherwise.
Result<GroupScores> ScoreChannels(const EvalModule& m, const Analysis& a, Criterion criterion,
                                  const std::map<std::string, at::Tensor>& saliency = {});

// Σ over up to max_batches calibration batches of w ⊙ ∂CE/∂w, per parameter path, computed on a
// private copy of the model loaded from `bytes`.
Result<std::map<std::string, at::Tensor>> TaylorSaliency(const std::string& bytes,
                                                         const models::Dataset& calibration,
                                                         int64_t batch_size, int max_batches);

}  // namespace edgeprune::pruning
