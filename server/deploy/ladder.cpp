#include "server/deploy/ladder.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace edgeprune::deploy {
namespace {

constexpr std::int64_t kBytesPerParameter = 4;

double Ratio(double allowed, double cost) {
  if (cost <= 0.0) return 1.0;
  return std::max(0.0, allowed / cost);
}

}  // namespace

double AffordableFraction(const Budget& budget, const catalog::ModelCost& master) {
  double f = 1.0;
  if (budget.max_param_bytes) {
    f = std::min(f, Ratio(static_cast<double>(*budget.max_param_bytes),
                          static_cast<double>(master.parameters * kBytesPerParameter)));
  }
  if (budget.max_macs) {
    f = std::min(f, Ratio(static_cast<double>(*budget.max_macs), static_cast<double>(master.macs)));
  }
  if (budget.max_activation_bytes && master.activation_bytes > 0) {
    f = std::min(f, Ratio(static_cast<double>(*budget.max_activation_bytes),
                          static_cast<double>(master.activation_bytes)));
  }
  if (budget.max_latency_ms && budget.latency_model && budget.latency_model->macs_per_ms > 0.0) {
    const double usable_ms = *budget.max_latency_ms - budget.latency_model->overhead_ms;
    const double affordable_macs = usable_ms * budget.latency_model->macs_per_ms;
    f = std::min(f, Ratio(affordable_macs, static_cast<double>(master.macs)));
  }
  return f;
}

std::optional<int> LevelFor(double fraction) {
  if (!(fraction > 0.0)) return std::nullopt;
  if (fraction >= 1.0) return 0;
  // Smallest k with 2^(-k/2) <= fraction, i.e. k >= -2 log2(fraction). The epsilon keeps an
  // exact ladder fraction on its own level despite rounding.
  const int k = static_cast<int>(std::ceil(-2.0 * std::log2(fraction) - 1e-9));
  if (k > kMaxLevel) return std::nullopt;
  return std::max(0, k);
}

double LevelFraction(int level) { return std::pow(2.0, -level / 2.0); }

std::string BucketKey(int level) { return "L" + std::to_string(level); }

Result<int> LevelFromBucket(const std::string& bucket) {
  int level = -1;
  if (bucket.size() >= 2 && bucket[0] == 'L') {
    auto [ptr, ec] = std::from_chars(bucket.data() + 1, bucket.data() + bucket.size(), level);
    if (ec == std::errc() && ptr == bucket.data() + bucket.size() && level >= 0 &&
        level <= kMaxLevel) {
      return level;
    }
  }
  return MakeError(ErrorKind::kInvalidArgument, "invalid_bucket",
                   "bucket '" + bucket + "' is not L0..L" + std::to_string(kMaxLevel));
}

Budget BudgetForLevel(const catalog::ModelCost& master, int level) {
  const double f = LevelFraction(level);
  auto scaled = [f](std::int64_t v) { return static_cast<std::int64_t>(std::floor(v * f)); };
  Budget b;
  b.max_param_bytes = scaled(master.parameters * kBytesPerParameter);
  b.max_macs = scaled(master.macs);
  // Activations are not bounded here: they do not shrink in proportion (the input and the first
  // layers stay), so a proportional bound could be unreachable. Fits() still checks a device's.
  return b;
}

bool Fits(const catalog::ModelCost& cost, const Budget& budget) {
  if (budget.max_param_bytes && cost.parameters * kBytesPerParameter > *budget.max_param_bytes) {
    return false;
  }
  if (budget.max_macs && cost.macs > *budget.max_macs) return false;
  if (budget.max_activation_bytes && cost.activation_bytes > 0 &&
      cost.activation_bytes > *budget.max_activation_bytes) {
    return false;
  }
  if (budget.max_latency_ms && budget.latency_model && budget.latency_model->macs_per_ms > 0.0 &&
      budget.latency_model->PredictMs(static_cast<double>(cost.macs)) > *budget.max_latency_ms) {
    return false;
  }
  return true;
}

std::optional<LadderRung> VariantLadder::BestFit(const Budget& budget) const {
  std::optional<LadderRung> best;
  for (const auto& rung : rungs_) {
    if (!Fits(rung.cost, budget)) continue;
    if (!best || rung.accuracy > best->accuracy ||
        (rung.accuracy == best->accuracy && rung.version > best->version)) {
      best = rung;
    }
  }
  return best;
}

std::vector<LadderRung> ReadyRungs(const std::vector<catalog::VariantRecord>& variants) {
  std::vector<LadderRung> rungs;
  for (const auto& v : variants) {
    if (v.status == "ready") rungs.push_back({v.id, v.cost, v.accuracy, v.version});
  }
  return rungs;
}

}  // namespace edgeprune::deploy
