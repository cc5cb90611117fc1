#pragma once
// The one wall clock. Services that make time-dependent decisions (offline detection, token
// expiry, certificate validity) take a Clock so tests move it instead of sleeping; code that only
// stamps records (created_at) calls NowMs().
//
// Thread-safety: both implementations are safe to call from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace edgeprune {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t NowMs() const = 0;  // unix epoch milliseconds
  std::int64_t NowS() const { return NowMs() / 1000; }
};

class SystemClock : public Clock {
 public:
  std::int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock tests set and advance.
class ManualClock : public Clock {
 public:
  explicit ManualClock(std::int64_t now_ms) : now_ms_(now_ms) {}
  std::int64_t NowMs() const override { return now_ms_.load(); }
  void Advance(std::chrono::milliseconds d) { now_ms_ += d.count(); }
  void Set(std::int64_t now_ms) { now_ms_ = now_ms; }

 private:
  std::atomic<std::int64_t> now_ms_;
};

// Unix epoch milliseconds of the system clock, for timestamps no test needs to move.
inline std::int64_t NowMs() { return SystemClock().NowMs(); }

}  // namespace edgeprune
