#pragma once
// The one periodic task of rollouts: every `rollouts.tick_seconds` it steps every unfinished
// rollout (RolloutService::Tick: observe, gates, actions, starts, phases) and sets the rollout
// gauges (telemetry::RolloutMetrics) from what it counted. A tick that fails is logged; the next
// one tries again (every rollout's state is in the database). With several server processes on
// one database only the holder of the "rollouts" task lease (store::TaskLeases, three ticks
// long) steps them; the others skip the step and take over within three ticks of the holder
// stopping. Every process still sets its gauges from the database, so each one scraped shows the
// same fleet-wide values.
//
// Thread-safety: Start/Stop from the owning thread; the task runs on its own thread.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "server/deploy/rollouts.hpp"
#include "server/store/task_lease.hpp"
#include "server/telemetry/rollout_metrics.hpp"

namespace edgeprune::server {

class RolloutTask {
 public:
  static constexpr const char* kLeaseName = "rollouts";

  RolloutTask(std::shared_ptr<deploy::RolloutService> rollouts,
              std::shared_ptr<telemetry::RolloutMetrics> metrics,  // may be null
              std::chrono::milliseconds interval,
              std::shared_ptr<store::TaskLeases> leases)  // null: always step (one process)
      : rollouts_(std::move(rollouts)),
        metrics_(std::move(metrics)),
        interval_(interval),
        leases_(std::move(leases)) {}
  ~RolloutTask() { Stop(); }
  RolloutTask(const RolloutTask&) = delete;
  RolloutTask& operator=(const RolloutTask&) = delete;

  void Start();
  void Stop();
  // One tick now, on the calling thread (also what the thread runs); returns whether this
  // process stepped the rollouts (false: another process holds the lease, or the database could
  // not be asked).
  bool RunOnce();

 private:
  void Step();
  void RefreshGauges();

  std::shared_ptr<deploy::RolloutService> rollouts_;
  std::shared_ptr<telemetry::RolloutMetrics> metrics_;
  std::chrono::milliseconds interval_;
  std::shared_ptr<store::TaskLeases> leases_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace edgeprune::server
