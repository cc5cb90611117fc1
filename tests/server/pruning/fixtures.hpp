#pragma once
// Paths of the Python-made TorchScript fixtures (tests/fixtures/pruning) and small helpers.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/build_paths.hpp"
#include "server/models/dataset.hpp"
#include "server/pruning/eval_graph.hpp"

namespace edgeprune::pruning::fixtures {

inline std::string FixturePath(const std::string& name) {
  return edgeprune::testing::SourceDir() + "/tests/fixtures/pruning/" + name + ".pt";
}

// Every fixture, scripted and traced: input [N, 1, 28, 28], 10 logits.
// A fixture's TorchScript bytes; "" (and a test failure) when it cannot be read.
inline std::string FixtureBytes(const std::string& name) {
  auto b = ReadModelBytes(FixturePath(name));
  EXPECT_TRUE(b.ok());
  return b.ok() ? *b : "";
}

inline const std::vector<std::string>& AllFixtures() {
  static const std::vector<std::string> names = {
      "convbn_scripted", "convbn_traced", "resnet_scripted", "resnet_traced",
      "depthwise_scripted", "depthwise_traced", "cat_scripted", "cat_traced",
      "mlp_scripted", "mlp_traced"};
  return names;
}

// A small synthetic data set of 1-channel side×side images and 10 classes: train_size training
// and test_size test images, validation_size of the training ones for validation, 128 for
// calibration.
inline Result<models::DatasetSplits> SmallSyntheticData(std::int64_t side,
                                                        std::int64_t train_size = 256,
                                                        std::int64_t test_size = 64,
                                                        std::int64_t validation_size = 32) {
  models::SyntheticSpec spec;
  spec.channels = 1;
  spec.height = side;
  spec.width = side;
  spec.classes = 10;
  spec.train_size = train_size;
  spec.test_size = test_size;
  models::SplitOptions split;
  split.validation_size = validation_size;
  split.calibration_size = 128;
  return models::MakeSyntheticDataset(spec, split);
}

}  // namespace edgeprune::pruning::fixtures
