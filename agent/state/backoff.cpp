#include "agent/state/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace edgeprune::agent {

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, std::uint64_t seed)
    : base_(std::max(base, std::chrono::milliseconds(1))), cap_(std::max(cap, base_)), rng_(seed) {}

std::chrono::milliseconds Backoff::NextFailure() {
  const double exp = std::ldexp(static_cast<double>(base_.count()), std::min(failures_, 40));
  const double ceiling = std::min(exp, static_cast<double>(cap_.count()));
  ++failures_;
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(ceiling * jitter(rng_)));
}

std::chrono::milliseconds Backoff::Jitter(std::chrono::milliseconds interval, double spread) {
  spread = std::clamp(spread, 0.0, 0.99);
  std::uniform_real_distribution<double> factor(1.0 - spread, 1.0 + spread);
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(static_cast<double>(interval.count()) * factor(rng_)));
}

}  // namespace edgeprune::agent
