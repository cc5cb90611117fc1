#pragma once
// Per-key token buckets for the expensive routes (enrollment, renewal): each key (a client
// address, a credential) may spend `burst` requests at once and regains `per_minute` a minute.
// A refused request learns how many seconds until its next token (the 429's Retry-After).
// The table is bounded: when it is full, buckets that have refilled completely (and so carry no
// state worth keeping) are dropped; if none has, the oldest half goes, which can only make the
// limiter more lenient, never block a key that has not spent its budget.
//
// Thread-safety: all methods are safe to call concurrently (one mutex; the work under it is a
// hash lookup and some arithmetic).

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace edgeprune {

class RateLimiter {
 public:
  // per_minute 0 disables the limiter (every Take succeeds).
  RateLimiter(int per_minute, int burst, std::size_t max_keys = 100'000);

  // Spends one token of key; returns 0 when allowed, else the whole seconds (≥ 1) to wait.
  std::int64_t Take(const std::string& key);
  // Same with an explicit monotonic time, for tests.
  std::int64_t Take(const std::string& key, std::chrono::steady_clock::time_point now);

  std::size_t size() const;

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
  };
  void Prune(std::chrono::steady_clock::time_point now);

  double per_second_;
  double burst_;
  std::size_t max_keys_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace edgeprune
