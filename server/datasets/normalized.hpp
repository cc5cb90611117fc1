#pragma once
// The normalized on-disk form of a data set, what the LibTorch model toolkit loads (it never
// parses an archive): a directory holding
//   dataset.json             DatasetInfo (ToJson)
//   x_train.f32, x_test.f32  samples as little-endian float32, row-major, already multiplied by
//                            info.scale (so uint8 becomes [0, 1]); mean/std are not applied
//   y_train.i64, y_test.i64  labels as little-endian int64
// written from any accepted format while it is validated, in one streaming pass.
//
// Thread-safety: free functions; distinct output directories may be written concurrently.

#include <string>

#include "edgeprune/common/result.hpp"
#include "server/datasets/dataset_info.hpp"
#include "server/datasets/validator.hpp"

namespace edgeprune::datasets {

// Validates `source` and writes its normalized form into `out_dir` (created; must be empty or
// absent). On any error the files written so far are removed.
Result<DatasetInfo> WriteNormalized(const std::string& source, const std::string& out_dir,
                                    const ValidationLimits& limits);

// Reads dataset.json of a normalized directory.
Result<DatasetInfo> ReadNormalizedInfo(const std::string& dir);

// File names inside a normalized directory.
inline constexpr const char* kInfoFile = "dataset.json";
const char* NormalizedFileName(Role role);  // "x_train.f32", "y_test.i64", ...

}  // namespace edgeprune::datasets
