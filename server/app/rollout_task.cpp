#include "server/app/rollout_task.hpp"

#include <ctime>

#include "edgeprune/common/log.hpp"

namespace edgeprune::server {

bool RolloutTask::RunOnce() {
  bool step = true;
  if (leases_) {
    auto held = leases_->Hold(kLeaseName, 3 * interval_);
    if (!held.ok()) log::Get("rollouts")->warn("rollout lease: {}", held.error().ToString());
    step = held.ok() && *held;
  }
  if (step) Step();
  RefreshGauges();
  return step;
}

namespace {

// This thread's CPU time: a step's cost without the time other threads and processes took while
// it ran (on a busy server the wall time mostly measures them).
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

void RolloutTask::Step() {
  const double cpu = ThreadCpuSeconds();
  auto report = rollouts_->Tick();
  if (metrics_) metrics_->Ticked(ThreadCpuSeconds() - cpu);
  if (!report.ok()) {
    log::Get("rollouts")->error("rollout tick: {}", report.error().ToString());
  } else if (report->transitions > 0 || report->started > 0) {
    log::Get("rollouts")->info("rollout tick: {} rollout(s), {} transition(s), {} device(s) started",
                               report->rollouts, report->transitions, report->started);
  }
}

void RolloutTask::RefreshGauges() {
  if (!metrics_) return;
  auto gauges = rollouts_->Gauges();
  if (!gauges.ok()) {
    log::Get("rollouts")->warn("rollout gauges: {}", gauges.error().ToString());
    return;
  }
  metrics_->Refresh(*gauges);
}

void RolloutTask::Start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      RunOnce();
      lock.lock();
      cv_.wait_for(lock, interval_, [this] { return stopping_; });
    }
  });
}

void RolloutTask::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Hand the task over now rather than after the lease expires.
  if (leases_) (void)leases_->Release(kLeaseName);
}

}  // namespace edgeprune::server
