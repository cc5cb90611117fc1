#include "server/telemetry/rollout_metrics.hpp"

#include <set>

namespace edgeprune::telemetry {
namespace {

prometheus::Family<prometheus::Gauge>& Gauge(prometheus::Registry& r, const char* name,
                                             const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

prometheus::Counter& Counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

int RolloutStateCode(const std::string& state) {
  static const char* kStates[] = {"running",   "paused",      "awaiting_approval",
                                  "completed", "rolled_back", "aborted"};
  for (int i = 0; i < 6; ++i) {
    if (state == kStates[i]) return i;
  }
  return -1;
}

RolloutMetrics::RolloutMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      devices_(Gauge(*registry_, "edgeprune_rollout_devices",
                     "Devices of a rollout per phase and state")),
      gate_value_(Gauge(*registry_, "edgeprune_rollout_gate_value",
                        "Last value of a rollout gate over its current phase")),
      gate_threshold_(Gauge(*registry_, "edgeprune_rollout_gate_threshold",
                            "Threshold above which a rollout gate trips")),
      state_(Gauge(*registry_, "edgeprune_rollout_state",
                   "Rollout state: 0 running, 1 paused, 2 awaiting_approval, 3 completed, "
                   "4 rolled_back, 5 aborted")),
      phase_seconds_(Gauge(*registry_, "edgeprune_rollout_phase_seconds",
                           "Seconds the rollout has been in its current phase")),
      bake_seconds_(Gauge(*registry_, "edgeprune_rollout_bake_seconds",
                          "Bake time of the rollout's current phase")),
      ticks_(Counter(*registry_, "edgeprune_rollout_ticks_total",
                     "Steps of the unfinished rollouts taken by this process")),
      tick_cpu_seconds_(Counter(*registry_, "edgeprune_rollout_tick_cpu_seconds_total",
                                "CPU time of those steps (observe, judge the gates, act)")) {}

void RolloutMetrics::Ticked(double cpu_seconds) {
  ticks_.Increment();
  if (cpu_seconds > 0.0) tick_cpu_seconds_.Increment(cpu_seconds);
}

void RolloutMetrics::Refresh(const std::vector<RolloutGauge>& rollouts) {
  std::lock_guard<std::mutex> lock(mu_);
  decltype(series_) next;
  auto set = [&](prometheus::Family<prometheus::Gauge>& family, const Labels& labels, double v) {
    prometheus::Gauge& g = family.Add(labels);
    g.Set(v);
    next.emplace_back(&family, &g);
  };
  for (const auto& r : rollouts) {
    set(state_, {{"rollout", r.id}}, RolloutStateCode(r.state));
    set(phase_seconds_, {{"rollout", r.id}}, r.phase_seconds);
    set(bake_seconds_, {{"rollout", r.id}}, r.bake_seconds);
    for (const auto& c : r.devices) {
      set(devices_, {{"rollout", r.id}, {"phase", std::to_string(c.phase)}, {"state", c.state}},
          static_cast<double>(c.n));
    }
    for (const auto& g : r.gates) {
      set(gate_value_, {{"rollout", r.id}, {"gate", g.name}}, g.value);
      set(gate_threshold_, {{"rollout", r.id}, {"gate", g.name}}, g.threshold);
    }
  }
  const std::set<decltype(series_)::value_type> keep(next.begin(), next.end());
  for (const auto& s : series_) {
    if (!keep.count(s)) s.first->Remove(s.second);
  }
  series_ = std::move(next);
}

}  // namespace edgeprune::telemetry
