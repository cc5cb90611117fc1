#pragma once
// The master model zoo: untrained TorchScript modules for any input shape and class count.
//   mlp       LeNet-300-100: flatten → 300 → 100 → classes (any sample shape)
//   mlp-bn    flatten → 256 → 128 → classes, each hidden layer Linear-BatchNorm1d-ReLU (any shape;
//             made for [F] feature vectors)
//   cnn1d     1-D signals [C, L]: three Conv1d-BatchNorm1d-ReLU stages, max pooling, adaptive
//             average pooling to 4 positions, 64 → classes
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
  std::vector<std::int64_t> input_shape;  // {C, H, W} images, {C, L} signals, {F} features
  std::int64_t num_classes = 10;
  std::uint64_t seed = 0;                 // weight initialisation
  double width = 1.0;                     // channel/width multiplier (≥ 0.125)
};

// "mlp", "mlp-bn", "cnn1d", "lenet5", "vgg", "resnet", "mobilenet".
const std::vector<std::string>& Architectures();

// Errors: unknown architecture (code "unknown_architecture"), an input shape of the wrong rank
// for the architecture or with a non-positive size ("invalid_shape"), or too small for the
// architecture's pooling ("input_too_small").
Result<torch::jit::Module> BuildMaster(const std::string& arch, const ModelSpec& spec);

}  // namespace edgeprune::models
