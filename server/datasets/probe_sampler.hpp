#pragma once
// Draws a variant's probe set (common wire/probe_file.hpp) from a stored data set file: `samples`
// samples of its test split, evenly spaced over it (test splits are often sorted by class, so the
// first N would all be one class), in the raw scale the agent expects (uint8 scaled to [0, 1],
// no mean/std applied). The file is read and validated again on the way, as any data set file is,
// so a file damaged on the server's disk yields an error, not a wrong probe set.
//
// Thread-safety: free function.

#include <cstdint>
#include <string>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/probe_file.hpp"
#include "server/datasets/validator.hpp"

namespace edgeprune::datasets {

// min(samples, test count) samples; `samples` in [1, wire::kMaxProbeSamples]. The validator's
// dataset_* codes for a bad file.
Result<wire::ProbeFile> SampleProbeSet(const std::string& path, std::int64_t samples,
                                       const ValidationLimits& limits);

}  // namespace edgeprune::datasets
