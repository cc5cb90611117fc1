#pragma once
// What a variant costs, computed from the analysis and a keep plan without building it:
// parameters (count and bytes of every parameter and buffer, at float32), MACs of convolutions
// and linear layers at batch 1, and peak activation memory of a sequential schedule (the most
// bytes live at once; in-place and view operators add none). Also the budget check.
//
// Thread-safety: pure functions.

#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/budget.hpp"
#include "server/pruning/analysis.hpp"

namespace edgeprune::pruning {

struct Cost {
  int64_t params = 0;
  int64_t param_bytes = 0;
  int64_t macs = 0;
  int64_t peak_activation_bytes = 0;
  // Bytes every operator writes at batch 1, summed (views and in-place operators write none): the
  // memory traffic that element-wise operators and pooling spend their time on, which MACs miss.
  int64_t activation_bytes_written = 0;
};

Cost EstimateCost(const Analysis& a, const KeepPlan& plan);

// One bound of a budget against a cost.
struct BoundCheck {
  std::string name;  // "param_bytes", "macs", "activation_bytes", "latency_ms"
  double limit = 0;
  double value = 0;
  bool ok = true;
};

std::vector<BoundCheck> CheckBudget(const Budget& budget, const Cost& cost);
bool Fits(const Budget& budget, const Cost& cost);

// Validates a budget: positive bounds, a latency bound has a latency model that can reach it.
Status ValidateBudget(const Budget& budget);

}  // namespace edgeprune::pruning
