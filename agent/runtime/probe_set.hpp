#pragma once
// A labeled probe set the agent checks a variant against before swapping it in, and measures
// periodically for telemetry. Samples are kept in the data set's raw scale (images in [0, 1]);
// each variant's manifest says how to normalize them. A variant's own probe set comes with it from
// the server (agent/download/probe_verifier.hpp); the local one, for variants that ship none, is
// loaded from IDX files (gzip or plain), e.g. the first N images of the Fashion-MNIST test split
// (the Debian dataset path is a configurable default).
//
// Thread-safety: an immutable value once loaded; share it freely.

#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::agent {

struct ProbeSet {
  std::vector<std::int64_t> sample_shape;  // one sample at batch 1: [1, 1, 28, 28], [1, 3, 128]
  std::vector<float> data;                 // size() samples back to back, raw scale
  std::vector<std::int64_t> labels;

  std::size_t size() const { return labels.size(); }
  std::size_t sample_elements() const;
  const float* sample(std::size_t i) const { return data.data() + i * sample_elements(); }
};

// Reads at most `limit` samples from an IDX3 image file (uint8 [N, H, W]) and an IDX1 label file.
// Errors name the file: "probe_unreadable" (kIo), "probe_invalid" (kInvalidArgument) for a bad
// magic number, truncated data or mismatched counts.
Result<ProbeSet> LoadIdxProbeSet(const std::string& images_path, const std::string& labels_path,
                                 std::size_t limit);

}  // namespace edgeprune::agent
