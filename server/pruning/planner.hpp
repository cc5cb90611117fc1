#pragma once
// Global channel ranking and the keep plan for a target: channels are removed lowest score first
// across all groups, never below a per-group minimum (a ratio of the master's width), and the
// kept counts are rounded to a multiple (default 8) where a group keeps at least 16 channels. A
// group read by a grouped convolution is ranked and kept in whole groups of that convolution.
//
// Thread-safety: a Planner is immutable after construction.

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/result.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/importance.hpp"

namespace edgeprune::pruning {

// The thinnest per-layer floor the server's variant builds fall back to for small budgets.
inline constexpr double kLowestKeepRatio = 0.1;

struct PlanOptions {
  // 0.25: at 10x fewer parameters 0.1 let one layer fall to 9 of 64 channels and lost 1.20 pt;
  // 0.25 kept every layer at 14-40 and lost 0.80 pt (docs/benchmarks.md, recovery recipe).
  double min_keep_ratio = 0.25;  // of the master's width, per group
  int64_t round_to = 8;         // kept counts are multiples of this ...
  int64_t round_above = 16;     // ... where a group keeps at least this many
  bool cost_aware = true;       // rank by CostAwareScores (importance per unit of budget)
  double traffic_weight = 1.0;  // weight of activation bytes written next to MACs in that ranking
};

// Resource-aware ranking: each group's scores divided by what removing one of its channels saves
// in the bounded resources, each as a share of the current cost (summed over the target's bounds;
// a MACs or latency bound counts MACs plus activation bytes written, because at batch 1 on a CPU the
// element-wise operators and pooling at high resolution cost time that MACs do not show). Removing channels lowest-first then frees the most budget for the least
// importance (the greedy knapsack rule) instead of taking the same share from cheap and costly
// layers alike. Groups whose channels save nothing keep their scores scaled by the largest saving.
// traffic_weight scales the activation-bytes term (0 = MACs alone).
GroupScores CostAwareScores(const Analysis& a, const GroupScores& scores, const Budget& target,
                            double traffic_weight = 1.0);

class Planner {
 public:
  // master_widths: group name → width in the master (groups absent use their current width).
  Planner(const Analysis& a, const GroupScores& scores,
          const std::map<std::string, int64_t>& master_widths, const PlanOptions& options);

  int64_t MaxRemovable() const { return max_removable_; }
  // Removes the n lowest-ranked removable units (channels, or groups of a grouped convolution),
  // then rounds each group's count.
  KeepPlan Removing(int64_t n) const;
  // The least removal that meets `target`, then channels given back (best-scored first, one
  // rounding unit of a group at a time) while the target still holds, so that rounding does not
  // leave the variant needlessly far below its budget; error "budget_unreachable" naming the
  // smallest reachable cost when even MaxRemovable() does not.
  Result<KeepPlan> ForBudget(const Budget& target, Cost* reached) const;

 private:
  KeepPlan FromCounts(const std::map<int, int64_t>& kept) const;
  KeepPlan FillUp(const Budget& target, KeepPlan plan) const;
  int64_t Rounded(int root, int64_t k, int64_t units) const;
  std::vector<int64_t> Channels(int root, int64_t k) const;  // of the k best units, sorted

  const Analysis& a_;
  PlanOptions options_;
  // Units are channels, or whole groups (blocks) of a grouped convolution's channels.
  std::vector<std::tuple<double, int, int64_t>> ranking_;  // score per channel, root, unit
  std::map<int, int64_t> min_keep_;               // root → units
  std::map<int, int64_t> block_;                  // root → channels per unit
  std::map<int, std::vector<int64_t>> by_score_;  // root → units, best first
  std::map<int, std::vector<double>> scores_;     // root → score per unit
  int64_t max_removable_ = 0;
};

}  // namespace edgeprune::pruning
