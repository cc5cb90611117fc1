#include "server/pruning/cost.hpp"

#include <algorithm>
#include <map>

namespace edgeprune::pruning {

Cost EstimateCost(const Analysis& a, const KeepPlan& plan) {
  Cost c;
  std::map<std::string, std::vector<int64_t>> shapes = a.tensors;
  for (const auto& pa : a.param_axes) {
    auto it = shapes.find(pa.param);
    if (it != shapes.end() && pa.axis < static_cast<int>(it->second.size())) {
      it->second[pa.axis] = KeptSize(a, plan, pa.layout);
    }
  }
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (a.parameters.count(name)) c.params += n;
    c.param_bytes += n * 4;
  }
  for (const auto& l : a.layers) {
    if (l.fixed_macs >= 0) {
      c.macs += l.fixed_macs;
    } else if (l.depthwise) {
      c.macs += l.factor * KeptSize(a, plan, l.out);
    } else {
      c.macs += l.factor * KeptSize(a, plan, l.in) * KeptSize(a, plan, l.out);
    }
  }
  // Sweep: +bytes at first, -bytes after last.
  std::map<size_t, int64_t> delta;
  for (const auto& v : a.activations) {
    int64_t bytes = v.bytes;
    if (!v.layout.empty() && v.total > 0) bytes = bytes / v.total * KeptSize(a, plan, v.layout);
    c.activation_bytes_written += bytes;
    delta[v.first] += bytes;
    delta[v.last + 1] -= bytes;
  }
  int64_t live = 0;
  for (const auto& [pos, d] : delta) {
    live += d;
    c.peak_activation_bytes = std::max(c.peak_activation_bytes, live);
  }
  return c;
}

std::vector<BoundCheck> CheckBudget(const Budget& b, const Cost& c) {
  std::vector<BoundCheck> out;
  auto add = [&](const char* name, double limit, double value) {
    out.push_back(BoundCheck{name, limit, value, value <= limit});
  };
  if (b.max_param_bytes) add("param_bytes", double(*b.max_param_bytes), double(c.param_bytes));
  if (b.max_macs) add("macs", double(*b.max_macs), double(c.macs));
  if (b.max_activation_bytes) {
    add("activation_bytes", double(*b.max_activation_bytes), double(c.peak_activation_bytes));
  }
  if (b.max_latency_ms) {
    double predicted = b.latency_model ? b.latency_model->PredictMs(double(c.macs)) : 0.0;
    add("latency_ms", *b.max_latency_ms, predicted);
  }
  return out;
}

bool Fits(const Budget& b, const Cost& c) {
  for (const auto& check : CheckBudget(b, c)) {
    if (!check.ok) return false;
  }
  return true;
}

Status ValidateBudget(const Budget& b) {
  auto bad = [](const std::string& what) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_budget", what + " must be positive");
  };
  if (b.max_param_bytes && *b.max_param_bytes <= 0) return bad("max_param_bytes");
  if (b.max_macs && *b.max_macs <= 0) return bad("max_macs");
  if (b.max_activation_bytes && *b.max_activation_bytes <= 0) return bad("max_activation_bytes");
  if (b.max_latency_ms) {
    if (!(*b.max_latency_ms > 0)) return bad("max_latency_ms");
    if (!b.latency_model || !(b.latency_model->macs_per_ms > 0)) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_budget",
                       "a latency bound needs the device's latency model (macs_per_ms > 0)");
    }
    if (b.latency_model->overhead_ms >= *b.max_latency_ms) {
      return MakeError(ErrorKind::kFailedPrecondition, "budget_unreachable",
                       "max_latency_ms is below the device's fixed overhead of " +
                           std::to_string(b.latency_model->overhead_ms) + " ms");
    }
  }
  if (b.Unbounded()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_budget",
                     "the budget bounds nothing: give at least one bound");
  }
  return Ok();
}

}  // namespace edgeprune::pruning
