#pragma once
// Shared helpers of the model toolkit tests: fixture paths and small synthetic data sets.

#include <string>

#include "support/build_paths.hpp"
#include "server/models/dataset.hpp"

namespace edgeprune::testing {

inline std::string Fixture(const std::string& name) {
  return edgeprune::testing::SourceDir() + "/tests/fixtures/models/" + name;
}

// A small, easily learnable synthetic set (fixed patterns plus noise).
inline models::DatasetSplits SmallSynthetic(std::int64_t channels, std::int64_t size, std::int64_t classes,
                                    std::int64_t train = 384, std::int64_t test = 96) {
  using namespace models;
  SyntheticSpec spec;
  spec.channels = channels;
  spec.height = size;
  spec.width = size;
  spec.classes = classes;
  spec.train_size = train;
  spec.test_size = test;
  SplitOptions split;
  split.validation_size = train / 8;
  split.calibration_size = 32;
  auto s = MakeSyntheticDataset(spec, split);
  return std::move(s).value();
}

}  // namespace edgeprune::testing
