#pragma once
// What a model costs, per layer and in total, at batch 1. LibTorch-free: fleet, API and pruning
// code can hold and serialise it without LibTorch headers. Produced by EstimateCost()
// (cost_model.hpp).
//
// Conventions (docs/models.md):
//   conv2d     macs = out_elements × (in_channels / groups) × kh × kw   (bias not counted)
//   linear     macs = out_elements × in_features
//   batch_norm macs = out_elements (a folded scale-and-shift is one multiply-add per element)
//   avg pool   macs = out_elements × window elements (adaptive: the largest window)
//   max pool, add, cat, flatten/view/reshape, relu and other element-wise ops: macs = 0,
//   but they are listed so their activations count.
// Activation memory: every tensor the forward produces lives from its producing node to its last
// use; views share their base's storage and count once. The input counts. Peak = the largest sum
// of live tensor bytes while any node runs (its inputs and outputs both live).
//
// Thread-safety: plain value types.

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace edgeprune::models {

struct LayerCost {
  std::string path;    // module path of the layer's weights, e.g. "features.0"; "" for
                       // functional ops without parameters (add, cat, flatten, ...)
  std::string op;      // "conv2d", "linear", "batch_norm", "max_pool2d", "avg_pool2d",
                       // "adaptive_avg_pool2d", "add", "cat", "flatten", "view", "relu", ...
  std::string node;    // the output value's name in the inlined graph, unique per report
  std::vector<std::int64_t> input_shape;   // first input, batch 1
  std::vector<std::int64_t> output_shape;  // batch 1
  std::int64_t params = 0;                 // elements of the weights this op uses
  std::int64_t macs = 0;
  std::int64_t output_bytes = 0;
  // conv2d only (0 otherwise): lets a pruner see depthwise convolutions.
  std::int64_t groups = 0;
};

struct CostReport {
  std::vector<std::int64_t> input_shape;   // {C, H, W}
  std::vector<std::int64_t> output_shape;  // batch 1, e.g. {1, 10}
  std::int64_t params = 0;                 // elements of all parameters
  std::int64_t param_bytes = 0;            // bytes of all parameters
  std::int64_t buffer_bytes = 0;           // bytes of buffers (batch norm running stats, ...)
  std::int64_t macs = 0;                   // sum over layers
  std::int64_t peak_activation_bytes = 0;  // batch 1, see conventions above
  std::vector<LayerCost> layers;           // in execution order

  // The layer whose weights live at module `path` (first match), or nullptr.
  const LayerCost* FindByPath(const std::string& path) const;
  // Sum of macs over layers whose path equals `prefix` or starts with `prefix` + ".".
  std::int64_t MacsUnder(const std::string& prefix) const;
  boost::json::object ToJson() const;
  // A fixed-width table for terminals: path, op, output shape, params, macs.
  std::string ToTable() const;
};

}  // namespace edgeprune::models
