#pragma once
// The master model zoo: untrained TorchScript modules for any input shape and class count.
//   mlp       LeNet-300-100: flatten → 300 → 100 → classes
//   lenet5    LeNet-5-style: conv5-relu-pool, conv5-relu-pool, 120 → 84 → classes
//   vgg       VGG-style with batch norm: three conv-bn-relu(-pool) stages, 128 → classes
//   resnet    small ResNet: stem, three basic blocks with residual adds, global pool, classes
//   mobilenet depthwise-separable (MobileNet-style) blocks, global pool, classes
// Module paths follow torch.nn conventions ("features.0", "layer1.0.conv1", "classifier.1") so
// they match what torch.jit.script produces from an equivalent Python model.
//
// Thread-safety: BuildMaster seeds and draws from LibTorch's global generator; do not build two
// models concurrently if reproducibility matters.

#include <torch/script.h>

#include <cstdint>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::models {

struct ModelSpec {
  std::vector<std::int64_t> input_shape;  // {C, H, W}
  std::int64_t num_classes = 10;
  std::uint64_t seed = 0;                 // weight initialisation
  double width = 1.0;                     // channel/width multiplier (≥ 0.125)
};

// "mlp", "lenet5", "vgg", "resnet", "mobilenet".
const std::vector<std::string>& Architectures();

// Errors: unknown architecture (code "unknown_architecture"), an input shape that is not
// {C, H, W} with positive sizes or is too small for the architecture's pooling.
Result<torch::jit::Module> BuildMaster(const std::string& arch, const ModelSpec& spec);

}  // namespace edgeprune::models
