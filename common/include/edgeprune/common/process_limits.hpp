#pragma once
// Process resource limits a long-running daemon adjusts at start. Today: the open-file limit. A
// server holding one TLS connection per device needs one descriptor per device, and the usual
// soft default (1024) is far below what the hard limit allows.
//
// Thread-safety: call once at start, before other threads open descriptors; setrlimit is
// process-wide.

#include <cstdint>

#include "edgeprune/common/result.hpp"

namespace edgeprune {

struct OpenFileLimit {
  std::uint64_t soft_before = 0;  // RLIMIT_NOFILE soft limit found at the call
  std::uint64_t soft = 0;         // soft limit in force after the call
  std::uint64_t hard = 0;         // hard limit (unchanged; only a privileged process may raise it)
};

// Raises the soft RLIMIT_NOFILE to the hard limit (to fs.nr_open when the hard limit is
// unlimited). Never lowers it. Errors: "rlimit_failed" (kInternal) naming the failing call.
Result<OpenFileLimit> RaiseOpenFileLimit();

}  // namespace edgeprune
