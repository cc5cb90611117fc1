#pragma once
// Exponential backoff with jitter and a cap: the n-th consecutive failure waits
// uniform(0.5, 1.0) × min(cap, base × 2^n). Jitter keeps a fleet that failed together (server
// restart) from retrying together. Also used to jitter the regular heartbeat interval.
//
// Thread-safety: not thread-safe; one per state machine.

#include <chrono>
#include <cstdint>
#include <random>

namespace edgeprune::agent {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, std::uint64_t seed);

  // Delay before the next retry; counts one more failure.
  std::chrono::milliseconds NextFailure();
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

  // interval × uniform(1 - spread, 1 + spread); spread in [0, 1).
  std::chrono::milliseconds Jitter(std::chrono::milliseconds interval, double spread = 0.1);

 private:
  std::chrono::milliseconds base_;
  std::chrono::milliseconds cap_;
  std::mt19937_64 rng_;
  int failures_ = 0;
};

}  // namespace edgeprune::agent
