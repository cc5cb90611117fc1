#include "server/pruning/planner.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace edgeprune::pruning {

GroupScores CostAwareScores(const Analysis& a, const GroupScores& scores, const Budget& target,
                            double traffic_weight) {
  const Cost base = EstimateCost(a, {});
  auto share = [](int64_t saved, int64_t total) {
    return total > 0 ? double(std::max<int64_t>(saved, 0)) / double(total) : 0.0;
  };
  std::map<int, double> saving;
  double largest = 0.0;
  for (const auto& g : a.groups) {
    if (!scores.count(g.root) || g.width < 2) continue;
    std::vector<int64_t> keep(static_cast<size_t>(g.width - 1));
    for (int64_t c = 0; c + 1 < g.width; ++c) keep[static_cast<size_t>(c)] = c;
    Cost less = EstimateCost(a, KeepPlan{{g.root, keep}});
    double s = 0.0;
    if (target.max_param_bytes) s += share(base.param_bytes - less.param_bytes, base.param_bytes);
    if (target.max_macs || target.max_latency_ms) {
      s += share(base.macs - less.macs, base.macs);
      // A MACs or latency bound is there for speed: count the memory traffic a channel causes as
      // well, so layers at high resolution (few MACs per byte) are not kept for free.
      s += traffic_weight * share(base.activation_bytes_written - less.activation_bytes_written,
                                  base.activation_bytes_written);
    }
    if (target.max_activation_bytes) {
      s += share(base.peak_activation_bytes - less.peak_activation_bytes,
                 base.peak_activation_bytes);
    }
    saving[g.root] = s;
    largest = std::max(largest, s);
  }
  GroupScores out = scores;
  if (largest <= 0.0) return out;
  for (auto& [root, values] : out) {
    auto it = saving.find(root);
    double s = it == saving.end() || it->second <= 0.0 ? largest : it->second;
    for (double& v : values) v /= s / largest;
  }
  return out;
}

// The planner ranks units: a channel, or a whole group of a grouped convolution (a block of the
// group's channels, scored by the sum of its channels' scores and ranked by their mean, so that
// one block competes with single channels at their scale). Counts below are in units.
Planner::Planner(const Analysis& a, const GroupScores& scores,
                 const std::map<std::string, int64_t>& master_widths, const PlanOptions& options)
    : a_(a), options_(options) {
  for (const auto& g : a.groups) {
    auto it = scores.find(g.root);
    if (it == scores.end()) continue;
    const int64_t block = std::max<int64_t>(1, g.block), units = g.width / block;
    int64_t master = g.width;
    if (auto mw = master_widths.find(g.name); mw != master_widths.end()) master = mw->second;
    int64_t min_keep = std::max<int64_t>(
        1, static_cast<int64_t>(std::ceil(options.min_keep_ratio * double(master / block))));
    min_keep = std::min(min_keep, units);
    min_keep_[g.root] = min_keep;
    block_[g.root] = block;
    max_removable_ += units - min_keep;
    std::vector<double> unit_score(static_cast<size_t>(units), 0.0);
    for (int64_t c = 0; c < units * block; ++c) unit_score[c / block] += it->second[c];
    std::vector<int64_t> order(units);
    for (int64_t u = 0; u < units; ++u) {
      order[u] = u;
      ranking_.emplace_back(unit_score[u] / double(block), g.root, u);
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t x, int64_t y) { return unit_score[x] > unit_score[y]; });
    by_score_[g.root] = std::move(order);
    scores_[g.root] = std::move(unit_score);
  }
  std::stable_sort(ranking_.begin(), ranking_.end());
}

int64_t Planner::Rounded(int root, int64_t k, int64_t units) const {
  // Groups of a grouped convolution are their own rounding unit.
  if (block_.at(root) > 1 || options_.round_to <= 1 || k < options_.round_above) return k;
  k = (k + options_.round_to / 2) / options_.round_to * options_.round_to;
  return std::min(std::max(k, options_.round_above), units);
}

std::vector<int64_t> Planner::Channels(int root, int64_t k) const {
  const std::vector<int64_t>& order = by_score_.at(root);
  std::vector<int64_t> units(order.begin(), order.begin() + k);
  std::sort(units.begin(), units.end());
  const int64_t block = block_.at(root);
  std::vector<int64_t> channels;
  channels.reserve(static_cast<size_t>(k * block));
  for (int64_t u : units) {
    for (int64_t j = 0; j < block; ++j) channels.push_back(u * block + j);
  }
  return channels;
}

KeepPlan Planner::Removing(int64_t n) const {
  std::map<int, int64_t> kept;
  for (const auto& [root, order] : by_score_) kept[root] = static_cast<int64_t>(order.size());
  int64_t removed = 0;
  for (const auto& [score, root, unit] : ranking_) {
    if (removed >= n) break;
    if (kept[root] > min_keep_.at(root)) {
      --kept[root];
      ++removed;
    }
  }
  for (auto& [root, k] : kept) {
    k = Rounded(root, k, static_cast<int64_t>(by_score_.at(root).size()));
  }
  return FromCounts(kept);
}

KeepPlan Planner::FromCounts(const std::map<int, int64_t>& kept) const {
  KeepPlan plan;
  for (const auto& [root, order] : by_score_) {
    int64_t k = kept.at(root);
    if (k >= static_cast<int64_t>(order.size())) continue;
    plan[root] = Channels(root, k);
  }
  return plan;
}

KeepPlan Planner::FillUp(const Budget& target, KeepPlan plan) const {
  std::map<int, int64_t> kept;
  for (const auto& [root, order] : by_score_) {
    auto it = plan.find(root);
    kept[root] = it == plan.end() ? static_cast<int64_t>(order.size())
                                  : static_cast<int64_t>(it->second.size()) / block_.at(root);
  }
  while (true) {
    // The group whose next rounding unit adds the most importance and still fits.
    int best_root = -1;
    int64_t best_k = 0;
    double best_gain = 0.0;
    for (const auto& [root, order] : by_score_) {
      int64_t width = static_cast<int64_t>(order.size()), k = kept[root];
      if (k >= width) continue;
      int64_t next = k + 1;
      if (block_.at(root) == 1 && options_.round_to > 1 && next >= options_.round_above) {
        next = std::max(options_.round_above,
                        (k / options_.round_to + 1) * options_.round_to);
      }
      next = std::min(next, width);
      const std::vector<double>& score = scores_.at(root);
      double gain = 0.0;
      for (int64_t i = k; i < next; ++i) gain += score[order[i]];
      if (best_root >= 0 && gain <= best_gain) continue;
      std::map<int, int64_t> trial = kept;
      trial[root] = next;
      if (!Fits(target, EstimateCost(a_, FromCounts(trial)))) continue;
      best_root = root;
      best_k = next;
      best_gain = gain;
    }
    if (best_root < 0) break;
    kept[best_root] = best_k;
  }
  return FromCounts(kept);
}

Result<KeepPlan> Planner::ForBudget(const Budget& target, Cost* reached) const {
  KeepPlan smallest = Removing(max_removable_);
  Cost at_min = EstimateCost(a_, smallest);
  if (!Fits(target, at_min)) {
    if (reached) *reached = at_min;
    std::ostringstream msg;
    msg << "the budget cannot be met even at minimum widths; smallest reachable: "
        << at_min.param_bytes << " parameter bytes, " << at_min.macs << " MACs, "
        << at_min.peak_activation_bytes << " activation bytes";
    if (target.latency_model) {
      msg << ", " << target.latency_model->PredictMs(double(at_min.macs)) << " ms";
    }
    return MakeError(ErrorKind::kFailedPrecondition, "budget_unreachable", msg.str());
  }
  int64_t lo = 0, hi = max_removable_;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (Fits(target, EstimateCost(a_, Removing(mid)))) hi = mid;
    else lo = mid + 1;
  }
  KeepPlan plan = Removing(lo);
  // Rounding can make the cost non-monotone in n: walk forward to a plan that fits.
  while (!Fits(target, EstimateCost(a_, plan)) && lo < max_removable_) plan = Removing(++lo);
  if (!Fits(target, EstimateCost(a_, plan))) plan = smallest;
  plan = FillUp(target, std::move(plan));
  if (reached) *reached = EstimateCost(a_, plan);
  return plan;
}

}  // namespace edgeprune::pruning
