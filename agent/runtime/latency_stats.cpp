#include "agent/runtime/latency_stats.hpp"

#include <algorithm>
#include <cmath>

namespace edgeprune::agent {

wire::LatencyQuantiles QuantilesOf(std::vector<double> samples_ms) {
  wire::LatencyQuantiles q;
  q.count = static_cast<std::int64_t>(samples_ms.size());
  if (samples_ms.empty()) return q;
  std::sort(samples_ms.begin(), samples_ms.end());
  auto rank = [&](double p) {
    auto idx = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples_ms.size())));
    return samples_ms[std::clamp<std::size_t>(idx, 1, samples_ms.size()) - 1];
  };
  q.p50_ms = rank(0.50);
  q.p95_ms = rank(0.95);
  q.p99_ms = rank(0.99);
  return q;
}

}  // namespace edgeprune::agent
