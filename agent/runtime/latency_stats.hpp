#pragma once
// Latency quantiles from a set of samples (nearest-rank), shared by the runtime's probe check and
// the local API's live latency window.
//
// Thread-safety: pure function.

#include <vector>

#include "edgeprune/common/wire/telemetry.hpp"

namespace edgeprune::agent {

// Samples in milliseconds; an empty set gives all zeros and count 0.
wire::LatencyQuantiles QuantilesOf(std::vector<double> samples_ms);

}  // namespace edgeprune::agent
