#pragma once
// Tells a running job handler to stop: the operator cancelled the job; the server is shutting
// down (the job then goes back to the queue and resumes from its checkpoint later); or the
// worker lost the job's lease (another worker took it back; nothing more may be written).
// Handlers poll stop_requested() between steps or call Check() and return its error.
//
// Thread-safety: thread-safe; set by the worker pool, read by the handler thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "edgeprune/common/result.hpp"

namespace edgeprune::jobs {

class CancellationToken {
 public:
  enum class Reason { kNone, kCancelled, kShutdown, kLeaseLost };

  void Cancel() { Set(Reason::kCancelled); }
  void Shutdown() { Set(Reason::kShutdown); }
  void LoseLease() { Set(Reason::kLeaseLost); }

  bool stop_requested() const { return reason_.load() != Reason::kNone; }
  Reason reason() const { return reason_.load(); }

  // Ok while running; "job_cancelled", "shutting_down" or "lease_lost" (kUnavailable) once asked
  // to stop.
  Status Check() const {
    switch (reason_.load()) {
      case Reason::kNone: return Ok();
      case Reason::kCancelled:
        return MakeError(ErrorKind::kUnavailable, "job_cancelled", "the job was cancelled");
      case Reason::kShutdown:
        return MakeError(ErrorKind::kUnavailable, "shutting_down", "the server is shutting down");
      case Reason::kLeaseLost:
        return MakeError(ErrorKind::kUnavailable, "lease_lost",
                         "the job's lease expired and another worker took it back");
    }
    return Ok();
  }

  // Waits up to `timeout` (a handler's pause between retries); returns true when asked to stop.
  bool WaitFor(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return stop_requested(); });
  }

 private:
  void Set(Reason reason) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Reason expected = Reason::kNone;
      reason_.compare_exchange_strong(expected, reason);  // the first reason wins
    }
    cv_.notify_all();
  }

  std::atomic<Reason> reason_{Reason::kNone};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

}  // namespace edgeprune::jobs
