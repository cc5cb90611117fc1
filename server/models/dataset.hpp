#pragma once
// Image classification data sets held in memory as normalized float tensors, with a fixed
// seeded train/validation split and a small calibration subset. Nothing assumes 28×28, one
// channel or ten classes: the shape and classes come from the files (or the synthetic spec).
//
// Thread-safety: a Dataset is an immutable value after loading; tensors are shared, not copied,
// by Subset(), so do not modify them in place.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::models {

// Per-channel normalization applied to images scaled to [0, 1]: x' = (x - mean[c]) / std[c].
struct Normalization {
  std::vector<double> mean;
  std::vector<double> std;
};

struct Dataset {
  std::string name;                      // "fashion-mnist/train", "synthetic/test", ...
  torch::Tensor images;                  // float32 [N, C, H, W], normalized
  torch::Tensor labels;                  // int64 [N], values in [0, num_classes())
  std::vector<std::string> class_names;  // index = label
  Normalization normalization;           // what was applied to `images`

  std::int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  std::int64_t num_classes() const { return static_cast<std::int64_t>(class_names.size()); }
  // {C, H, W}
  std::vector<std::int64_t> image_shape() const;
  // Rows `indices` (int64 tensor) as a new Dataset named name + suffix.
  Dataset Subset(const torch::Tensor& indices, const std::string& suffix) const;
  // The first n rows (all when n <= 0 or n >= size()).
  Dataset Head(std::int64_t n) const;
};

struct DatasetSplits {
  Dataset train;        // training pool minus validation
  Dataset validation;   // fixed seeded share of the training pool
  Dataset test;         // the data set's own test files
  Dataset calibration;  // small seeded subset of train (for pruning statistics)
};

struct SplitOptions {
  std::int64_t validation_size = 5000;   // taken from the training pool (capped at half of it)
  std::int64_t calibration_size = 512;   // taken from the train split
  std::uint64_t seed = 20240601;         // fixes the split: same seed → same rows
  // Limits for quick runs and CI: keep only the first n of each split after splitting (0 = all).
  std::int64_t train_limit = 0;
  std::int64_t test_limit = 0;
};

// Debian's dataset-fashion-mnist location; overridable by --data-dir / config.
inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";
const std::vector<std::string>& FashionMnistClassNames();

// One IDX image file ([N, H, W] = one channel, or channel-first [N, C, H, W]) and its label file
// ([N]), scaled to [0, 1] and not yet normalized. Labels must be < class_names.size(). Errors
// name the file and the problem.
Result<Dataset> LoadIdxPair(const std::string& images_path, const std::string& labels_path,
                            const std::string& name, std::vector<std::string> class_names);

// Per-channel mean/std of images in [N, C, H, W].
Normalization ComputeNormalization(const torch::Tensor& images);
// Applies `norm` to images that are currently in [0, 1] (dataset.normalization must be empty).
Status ApplyNormalization(Dataset& dataset, const Normalization& norm);

// Splits a training pool and a test set: validation/calibration as in `options`, normalization
// computed on the train split (or `norm` when given, e.g. from a model card) applied to all.
Result<DatasetSplits> MakeSplits(Dataset train_pool, Dataset test, const SplitOptions& options,
                                 const Normalization* norm = nullptr);

// Fashion-MNIST from `dir` ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]).
Result<DatasetSplits> LoadFashionMnist(const std::string& dir, const SplitOptions& options,
                                       const Normalization* norm = nullptr);

// A learnable synthetic set for tests: each class is a fixed random pattern plus noise.
struct SyntheticSpec {
  std::int64_t channels = 3;
  std::int64_t height = 32;
  std::int64_t width = 32;
  std::int64_t classes = 4;
  std::int64_t train_size = 512;
  std::int64_t test_size = 128;
  double noise = 0.35;
  std::uint64_t seed = 7;
};
Result<Dataset> MakeSyntheticPool(const SyntheticSpec& spec, bool test_part);
Result<DatasetSplits> MakeSyntheticDataset(const SyntheticSpec& spec, const SplitOptions& options);

// By name: "fashion-mnist" (reads `dir`, default kDefaultFashionMnistDir when empty) or
// "synthetic:CxHxW:K" (e.g. "synthetic:3x32x32:5"; `dir` ignored).
Result<DatasetSplits> LoadDataset(const std::string& name, const std::string& dir,
                                  const SplitOptions& options, const Normalization* norm = nullptr);

}  // namespace edgeprune::models
