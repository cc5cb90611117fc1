#pragma once
// A variant on the wire: manifest.json, a detached Ed25519 signature over the manifest's exact
// bytes, and the payload (a TorchScript file). The server's signer builds a VariantManifest and
// serializes it with SerializeManifest(); the agent verifies the signature over the bytes it
// received and only then decodes them with ParseManifest(). Decoding is strict: unknown keys,
// missing fields and out-of-range values are refused naming the field.
//
// Thread-safety: plain value types; codecs are pure functions.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/budget.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::wire {

struct ManifestPayload {
  std::string sha256;  // 64 lower-case hex chars over the payload file
  std::int64_t size_bytes = 0;
};

// The variant's probe set (wire/probe_file.hpp): samples of the model's data set, fetched next to
// the payload and refused unless they hash to this digest. Absent in manifests of variants whose
// data set the server could not draw samples from; the agent then uses its locally configured set.
struct ManifestProbe {
  std::string sha256;  // 64 lower-case hex chars over the probe file
  std::int64_t size_bytes = 0;
  std::int64_t samples = 0;
};

// What the server measured on its evaluation split, and the floor the agent's probe check uses.
struct ManifestMetrics {
  double accuracy = 0.0;        // [0, 1]
  double accuracy_floor = 0.0;  // [0, 1]: the agent refuses a variant scoring below it
  std::int64_t params = 0;
  std::int64_t macs = 0;        // per inference at batch 1
};

// Per-channel input preprocessing the variant was trained with, on images scaled to [0, 1]:
// x' = (x - mean[c]) / std[c]. Both empty: no normalization; otherwise one entry per channel
// (input_shape[1]).
struct ManifestNormalize {
  std::vector<double> mean;
  std::vector<double> std;
};

struct VariantManifest {
  std::string model_id;
  std::string variant_id;
  std::int64_t version = 0;  // monotonic per device; the agent refuses a non-increasing version
  bool rollback = false;     // signed permission to install a version ≤ the installed one
  // A rollback permission is bound to one device and expires: a copy captured from one device
  // cannot downgrade another, nor the same device later. Both are required when rollback is
  // true and absent otherwise (a variant's own manifest is the same bytes for every device).
  std::string device_id;
  std::int64_t expires_at = 0;  // unix seconds
  ManifestPayload payload;
  std::optional<ManifestProbe> probe;
  std::vector<std::int64_t> input_shape;  // batch 1, e.g. [1, 1, 28, 28]
  std::int64_t num_classes = 0;
  ManifestNormalize normalize;
  ManifestMetrics metrics;
  Budget budget;
  std::int64_t created_at = 0;  // unix seconds
  std::string key_id;           // Ed25519 key id of the signing key (crypto::Ed25519KeyId)
};

inline constexpr std::size_t kMaxManifestBytes = 64 * 1024;
inline constexpr std::int64_t kMaxPayloadBytes = std::int64_t{4} << 30;  // 4 GiB
inline constexpr std::size_t kMaxInputRank = 6;
inline constexpr std::int64_t kMaxInputElements = 64 * 1024 * 1024;
inline constexpr std::int64_t kMaxClasses = 100000;

boost::json::object ToJson(const VariantManifest& m);
Result<VariantManifest> ManifestFromJson(const boost::json::object& o);

// The exact bytes that get signed and shipped.
std::string SerializeManifest(const VariantManifest& m);
// Parses manifest bytes; "manifest_too_large" above kMaxManifestBytes, "invalid_json" or
// "invalid_field" naming the field otherwise.
Result<VariantManifest> ParseManifest(std::string_view bytes);

// Number of elements of one input tensor of this shape (product of dims): 0 when a dim is not
// positive, kElementCountSaturated (above kMaxInputElements) once the product exceeds
// kMaxInputElements, so "ElementCount(s) > kMaxInputElements" refuses every oversized shape.
inline constexpr std::int64_t kElementCountSaturated = std::numeric_limits<std::int64_t>::max();
std::int64_t ElementCount(const std::vector<std::int64_t>& shape);

}  // namespace edgeprune::wire
