#pragma once
// The per-variant report: parameters, bytes, MACs, peak activation, accuracy, measured CPU
// latency p50/p95 at batch 1, speed-up versus the master, kept channels per layer, frozen
// operations and every budget bound against the result; as JSON and as text.
//
// Thread-safety: value types and pure functions.

#include <boost/json.hpp>

#include <string>

#include "server/pruning/pipeline.hpp"

namespace edgeprune::pruning {

struct Measured {
  double accuracy = -1.0;  // 0..1 on the test split, -1 when not measured
  double latency_p50_ms = -1.0;
  double latency_p95_ms = -1.0;
};

struct VariantReport {
  PruneResult result;
  Measured master;
  Measured variant;
  std::string criterion;
  // How both models were prepared for the latency measurement (the same for master and variant).
  std::string latency_method;
};

boost::json::object ToJson(const VariantReport& r);
std::string ToText(const VariantReport& r);

}  // namespace edgeprune::pruning
