#pragma once
// The one periodic task of rollouts: every `rollouts.tick_seconds` it steps every unfinished
// rollout (RolloutService::Tick: observe, gates, actions, starts, phases) and sets the rollout
// gauges (telemetry::RolloutMetrics) from what it counted. A tick that fails is logged; the next
// one tries again (every rollout's state is in the database).
//
// Thread-safety: Start/Stop from the owning thread; the task runs on its own thread.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "server/deploy/rollouts.hpp"
#include "server/telemetry/rollout_metrics.hpp"

namespace edgeprune::server {

class RolloutTask {
 public:
  RolloutTask(std::shared_ptr<deploy::RolloutService> rollouts,
              std::shared_ptr<telemetry::RolloutMetrics> metrics,  // may be null
              std::chrono::milliseconds interval)
      : rollouts_(std::move(rollouts)), metrics_(std::move(metrics)), interval_(interval) {}
  ~RolloutTask() { Stop(); }
  RolloutTask(const RolloutTask&) = delete;
  RolloutTask& operator=(const RolloutTask&) = delete;

  void Start();
  void Stop();
  // One tick now, on the calling thread (also what the thread runs).
  void RunOnce();

 private:
  std::shared_ptr<deploy::RolloutService> rollouts_;
  std::shared_ptr<telemetry::RolloutMetrics> metrics_;
  std::chrono::milliseconds interval_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

}  // namespace edgeprune::server
