#pragma once
// Logging strings an outsider controls, and messages an outsider can trigger at will. Every line
// of the shared sink (log.hpp) is written with its control characters escaped (Escape), so a
// host name or an event reason with a newline cannot forge a log line; Throttle bounds how often
// a line a client can provoke (a refused enrollment, a failed accept) is written at all.
//
// Thread-safety: Escape is a pure function; Throttle is thread-safe and lock-free.

#include <spdlog/formatter.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace edgeprune::log {

// Control characters as \n, \r, \t or \xHH, and a backslash doubled, so the escaped text is
// one unambiguous line.
std::string Escape(std::string_view text);

// The formatter of the shared sink (timestamp, level, component, escaped message); tests and
// extra sinks use it to log the same way.
std::unique_ptr<spdlog::formatter> MakeFormatter();

// At most one line per period: Allow() says whether to write this occurrence, and how many were
// suppressed since the last written one (to put in the line).
class Throttle {
 public:
  explicit Throttle(std::chrono::milliseconds period = std::chrono::seconds(1)) : period_(period) {}
  // True when this occurrence should be logged; *suppressed then holds the skipped count.
  bool Allow(std::uint64_t* suppressed);

 private:
  std::chrono::milliseconds period_;
  std::atomic<std::int64_t> next_ns_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace edgeprune::log
