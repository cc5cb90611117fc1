#pragma once
// A variant's probe set on the wire: the labeled held-out samples the agent checks the variant
// against before swapping it in, and measures for telemetry. The server draws them from the
// model's data set (its test split) when it builds the variant, stores them as a blob and names
// their SHA-256 and size in the signed manifest, so the signature covers them as it covers the
// payload. Samples are in the data set's raw scale (uint8 already scaled to [0, 1]); the manifest's
// normalize is applied on the agent, as for /v1/infer inputs.
//
// Layout, little-endian, nothing else before or after:
//   8 bytes   magic "EPPROBE1"
//   u32       rank R of one sample (1..kMaxInputRank-1): [F], [C,L], [C,H,W], ...
//   R × i64   the sample shape (no batch axis), every dim ≥ 1
//   u64       N, the number of samples (1..kMaxProbeSamples)
//   N × i64   labels
//   N × E f32 the samples back to back (E = product of the shape), all finite
// Decoding is strict: the exact size must match, so a truncated or padded file is refused.
//
// Thread-safety: plain value type; codecs are pure functions.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::wire {

inline constexpr std::int64_t kMaxProbeSamples = 10000;
// Far above any sensible probe set (200 Fashion-MNIST images are 0.6 MiB), low enough that an
// agent never holds a hostile one in memory.
inline constexpr std::int64_t kMaxProbeBytes = 64 * 1024 * 1024;

struct ProbeFile {
  std::vector<std::int64_t> sample_shape;  // without the batch axis
  std::vector<std::int64_t> labels;
  std::vector<float> data;  // labels.size() samples back to back
};

std::string SerializeProbeFile(const ProbeFile& p);
// "probe_invalid" (kInvalidArgument) naming what is wrong: magic, rank, dims, count, size,
// a non-finite value or a negative label.
Result<ProbeFile> ParseProbeFile(std::string_view bytes);

}  // namespace edgeprune::wire
