#pragma once
// Rollout gauges on the server's Prometheus registry, set from what deploy/ counts:
//   edgeprune_rollout_devices{rollout,phase,state}    devices per phase and state
//   edgeprune_rollout_gate_value{rollout,gate}        each gate's last value
//   edgeprune_rollout_gate_threshold{rollout,gate}    and its threshold
//   edgeprune_rollout_state{rollout}                  0 running, 1 paused, 2 awaiting_approval,
//                                                     3 completed, 4 rolled_back, 5 aborted
//   edgeprune_rollout_phase_seconds{rollout}          time in the current phase
//   edgeprune_rollout_bake_seconds{rollout}           the current phase's bake time
//   edgeprune_rollout_ticks_total                      steps of the rollouts taken here
//   edgeprune_rollout_tick_cpu_seconds_total           their CPU time (the stepping thread's):
//                                                      what judging the gates costs, by rate()
// A rollout no longer reported (finished over a day ago) loses its series.
//
// Thread-safety: thread-safe.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace edgeprune::telemetry {

struct RolloutGauge {
  std::string id;
  std::string state;
  double phase_seconds = 0.0;
  double bake_seconds = 0.0;
  struct Count {
    int phase = 0;
    std::string state;
    std::int64_t n = 0;
  };
  std::vector<Count> devices;
  struct Gate {
    std::string name;
    double value = 0.0;
    double threshold = 0.0;
  };
  std::vector<Gate> gates;
};

// The value of edgeprune_rollout_state for a state name; -1 for an unknown one.
int RolloutStateCode(const std::string& state);

class RolloutMetrics {
 public:
  explicit RolloutMetrics(std::shared_ptr<prometheus::Registry> registry);

  void Refresh(const std::vector<RolloutGauge>& rollouts);
  // One step of every unfinished rollout, and the CPU seconds it took.
  void Ticked(double cpu_seconds);

 private:
  using Labels = std::map<std::string, std::string>;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>& devices_;
  prometheus::Family<prometheus::Gauge>& gate_value_;
  prometheus::Family<prometheus::Gauge>& gate_threshold_;
  prometheus::Family<prometheus::Gauge>& state_;
  prometheus::Family<prometheus::Gauge>& phase_seconds_;
  prometheus::Family<prometheus::Gauge>& bake_seconds_;
  prometheus::Counter& ticks_;
  prometheus::Counter& tick_cpu_seconds_;
  std::mutex mu_;
  // Every series set by the last Refresh, to remove those of rollouts no longer reported.
  std::vector<std::pair<prometheus::Family<prometheus::Gauge>*, prometheus::Gauge*>> series_;
};

}  // namespace edgeprune::telemetry
