#pragma once
// Measures this device into a wire::DeviceProfile: OS facts (hardware.hpp), the LibTorch version
// and microbenchmarks (runtime/microbench.hpp), and the caps declared in the agent's config.
//
// Thread-safety: runs LibTorch benchmarks; call from one thread at a time.

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
};

inline constexpr const char* kAgentVersion = "0.1.0";

Result<wire::DeviceProfile> MeasureProfile(const MeasureOptions& options);

// Resident memory of this process in bytes (from /proc/self/statm); 0 when unreadable.
std::int64_t SelfRssBytes();

}  // namespace edgeprune::agent
