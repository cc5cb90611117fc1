#pragma once
// Paths of the Python-made TorchScript fixtures (tests/fixtures/pruning) and small helpers.

#include <string>
#include <vector>

namespace edgeprune::pruning::fixtures {

inline std::string FixturePath(const std::string& name) {
  return std::string(EDGEPRUNE_SOURCE_DIR) + "/tests/fixtures/pruning/" + name + ".pt";
}

// Every fixture, scripted and traced: input [N, 1, 28, 28], 10 logits.
inline const std::vector<std::string>& AllFixtures() {
  static const std::vector<std::string> names = {
      "convbn_scripted", "convbn_traced", "resnet_scripted", "resnet_traced",
      "depthwise_scripted", "depthwise_traced", "cat_scripted", "cat_traced",
      "mlp_scripted", "mlp_traced"};
  return names;
}

}  // namespace edgeprune::pruning::fixtures
