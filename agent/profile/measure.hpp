#pragma once
// Measures this device into a wire::DeviceProfile: OS facts (hardware.hpp), the LibTorch version
// and microbenchmarks, and the caps declared in the agent's config.
//
// The microbenchmarks need LibTorch, which the agent does not map until a model is installed
// (runtime/backend.hpp). So they run in a short-lived child, `edgeprune-agent microbench --json`,
// which opens the LibTorch module, measures, prints MicrobenchReport JSON and exits: the daemon's
// memory never holds LibTorch or the benchmark buffers for it.
//
// Thread-safety: MeasureProfile and RunMicrobenchChild may be called from any thread (each child
// is its own process); RunMicrobenchHere sets LibTorch's process-wide thread count.

#include <cstdint>
#include <string>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/profile.hpp"

namespace edgeprune::agent {

struct MeasureOptions {
  std::string data_dir;  // free disk is measured here
  std::int64_t bench_threads = 1;
  std::int64_t bench_ms = 1000;
  wire::DeviceCaps caps;
  std::string backend_path;  // the LibTorch module (runtime.module); empty: next to the agent
  std::string agent_bin;     // the agent executable run as the child; empty: /proc/self/exe
};

inline constexpr const char* kAgentVersion = "0.1.0";

Result<wire::DeviceProfile> MeasureProfile(const MeasureOptions& options);

// What `edgeprune-agent microbench --json` prints, one JSON object:
// {"torch_version": "1.13.1", "bench": {wire::Microbench}}.
struct MicrobenchReport {
  std::string torch_version;
  wire::Microbench bench;
};
boost::json::object ToJson(const MicrobenchReport& report);
Result<MicrobenchReport> MicrobenchReportFromJson(const std::string& text);

// In this process: opens the LibTorch module and runs the microbenchmarks (the child's side).
// "runtime_unavailable" when the module cannot be opened, "microbench_failed" when LibTorch throws.
Result<MicrobenchReport> RunMicrobenchHere(const MeasureOptions& options);

// Runs `<agent_bin> microbench --json ...` and parses what it prints. "microbench_failed"
// naming the command when it cannot start, exits non-zero (with its last stderr line) or prints
// something that is not a report.
Result<MicrobenchReport> RunMicrobenchChild(const MeasureOptions& options);

// Resident memory of this process in bytes (from /proc/self/statm); 0 when unreadable.
std::int64_t SelfRssBytes();

}  // namespace edgeprune::agent
