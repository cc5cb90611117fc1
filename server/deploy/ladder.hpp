#pragma once
// The variant ladder of one master model. A device's budget is reduced to one number, the
// fraction of the master's cost (parameter bytes, MACs, peak activations, predicted latency) it
// can afford, and that fraction is bucketed on a geometric ladder of levels 2^(-k/2):
// level 0 = the full master, level 1 = 71 %, level 2 = 50 % … level kMaxLevel = 1/256.
// A budget spread over a 16× range therefore needs at most 9 levels, whatever the fleet size.
//
// Assignment: the most accurate existing (ready) variant whose measured cost fits the device's
// budget (BestFit), unless every one that fits is of a smaller level than the device's own and
// that level has not been built yet (deploy::Reuse in assign.hpp); then, or when none fits, the
// device's own level is built, with a budget that is
// the level's fraction of the master's cost in every dimension, which fits every device in that
// bucket by construction.
//
// Thread-safety: pure functions and a plain value type.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/result.hpp"
#include "server/catalog/model_cost.hpp"
#include "server/catalog/variant_repository.hpp"

namespace edgeprune::deploy {

inline constexpr int kMaxLevel = 16;

using catalog::ModelCost;

// The largest fraction of `master` that `budget` affords, clipped to 1 (an unbounded budget
// affords the whole master). 0 when a bound cannot be met at all (e.g. a latency SLO below the
// device's fixed overhead).
double AffordableFraction(const Budget& budget, const catalog::ModelCost& master);

// Level of a fraction: the smallest k with 2^(-k/2) ≤ fraction. nullopt below level kMaxLevel.
std::optional<int> LevelFor(double fraction);
double LevelFraction(int level);
std::string BucketKey(int level);  // "L3"
Result<int> LevelFromBucket(const std::string& bucket);

// The budget a level's variant is built for: its fraction of each master cost.
Budget BudgetForLevel(const catalog::ModelCost& master, int level);

// Whether a model of this cost fits the budget in every bounded dimension.
bool Fits(const catalog::ModelCost& cost, const Budget& budget);

struct LadderRung {
  std::string variant_id;
  catalog::ModelCost cost;
  double accuracy = 0.0;
  std::int64_t version = 0;
};

class VariantLadder {
 public:
  explicit VariantLadder(std::vector<LadderRung> rungs) : rungs_(std::move(rungs)) {}

  // The most accurate rung that fits (ties: the newer version); nullopt when none fits.
  std::optional<LadderRung> BestFit(const Budget& budget) const;

  const std::vector<LadderRung>& rungs() const { return rungs_; }

 private:
  std::vector<LadderRung> rungs_;
};

// The ready rungs of a model's variants, for VariantLadder.
std::vector<LadderRung> ReadyRungs(const std::vector<catalog::VariantRecord>& variants);

}  // namespace edgeprune::deploy
