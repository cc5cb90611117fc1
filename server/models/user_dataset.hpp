#pragma once
// Operators' data sets as tensors: a data set file in any format server/datasets reads (.npz, IDX
// pairs in a zip, tar or directory), validated by the same validator while it streams straight
// into preallocated tensors (no copy of the file, no temporary files: this also runs inside the
// sandboxed model worker), or a normalized directory written by datasets::WriteNormalized.
// Samples keep their own shape ([N, C, H, W], [N, C, L], [N, F]); labels and class names come
// from the data set.
//
// Thread-safety: free functions.

#include <string>

#include "edgeprune/common/result.hpp"
#include "server/models/dataset.hpp"

namespace edgeprune::models {

// True when `name` is not a built-in data set name but a path (it contains '/' or exists).
bool IsDataSetPath(const std::string& name);

// The train pool and the test split of the file or normalized directory at `path`
// (dataset_* codes from the validator for a bad file), split as `options` says.
Result<DatasetSplits> LoadUserDataset(const std::string& path, const SplitOptions& options,
                                      const Normalization* norm = nullptr);

}  // namespace edgeprune::models
