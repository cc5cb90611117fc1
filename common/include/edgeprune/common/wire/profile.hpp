#pragma once
// A device's hardware profile as the agent measures it and sends it (PUT /agent/v1/profile), plus
// the operator-declared caps that lower its budget. Decoding validates every field against sane
// physical ranges (docs/budgets.md lists them) and names the field on failure.
//
// Thread-safety: plain value types; codecs are pure functions.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::wire {

// Operator-declared limits; each absent cap does not constrain.
struct DeviceCaps {
  std::optional<std::int64_t> memory_reserve_bytes;  // RAM set aside for the model
  std::optional<double> latency_slo_ms;              // per inference at batch 1
  std::optional<std::int64_t> max_model_bytes;       // largest variant file accepted

  bool Empty() const { return !memory_reserve_bytes && !latency_slo_ms && !max_model_bytes; }
  // The stricter of two cap sets, key by key.
  static DeviceCaps Tighter(const DeviceCaps& a, const DeviceCaps& b);
};

// LibTorch microbenchmarks at batch 1 with `threads` intra-op threads.
struct Microbench {
  double matmul_gflops = 0.0;        // dense float32 matmul
  double conv_gmacs_per_s = 0.0;     // 3x3 convolution throughput, batch 1
  double conv_overhead_ms = 0.0;     // latency of a tiny forward: dispatch cost per inference
  double mem_bandwidth_gbps = 0.0;   // large tensor copy, GB/s read+write
  std::int64_t threads = 1;
};

struct DeviceProfile {
  std::string arch;            // uname machine: x86_64, aarch64
  std::string cpu_model;
  std::int64_t cores = 0;      // online logical CPUs
  std::vector<std::string> simd_flags;  // the SIMD subset of cpu flags: sse4_2, avx2, neon ...
  std::int64_t ram_total_bytes = 0;
  std::int64_t ram_available_bytes = 0;
  std::int64_t disk_free_bytes = 0;  // for the agent's data directory
  std::string os;              // "Linux 6.1.0-18-amd64"
  std::string torch_version;
  std::string agent_version;
  Microbench bench;
  DeviceCaps caps;             // from the agent's config
  std::int64_t measured_at = 0;  // unix seconds
};

// Accepted ranges (inclusive). Values outside are rejected as not physical.
inline constexpr std::int64_t kMaxCores = 4096;
inline constexpr std::int64_t kMaxRamBytes = std::int64_t{1} << 44;   // 16 TiB
inline constexpr std::int64_t kMaxDiskBytes = std::int64_t{1} << 54;  // 16 PiB
inline constexpr double kMaxGflops = 1.0e6;
inline constexpr double kMaxBandwidthGbps = 1.0e4;
inline constexpr double kMaxLatencySloMs = 3.6e6;

boost::json::object ToJson(const DeviceCaps& caps);
Result<DeviceCaps> CapsFromJson(const boost::json::object& o);

boost::json::object ToJson(const Microbench& bench);
Result<Microbench> MicrobenchFromJson(const boost::json::object& o);

boost::json::object ToJson(const DeviceProfile& profile);
Result<DeviceProfile> ProfileFromJson(const boost::json::object& o);
// Parses a request body; rejects bodies larger than max_bytes before parsing.
Result<DeviceProfile> ParseProfile(std::string_view body, std::size_t max_bytes = 64 * 1024);

}  // namespace edgeprune::wire
