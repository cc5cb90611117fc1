#pragma once
// Channel dependency analysis on an evaluation-mode TorchScript graph.
//
// Every convolution or linear output opens a "channel space". Values carry a layout: the spaces
// their channel (or, after a flatten, feature) axis is made of, in order, each with an expansion
// (how many features one channel becomes: H·W after a flatten). Pass-through operators keep the
// layout, `cat` concatenates layouts, a residual `add` unifies the spaces of its inputs (they must
// keep the same indices). Spaces reaching the model's outputs or an operator the analysis does not
// understand are frozen. The remaining union-find classes are the prunable channel groups.
//
// Thread-safety: an Analysis is a value; it points into the EvalModule's graph it was made from.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/pruning/eval_graph.hpp"

namespace edgeprune::pruning {

struct Segment {
  int space = 0;
  int64_t channels = 0;
  int64_t expand = 1;  // features per channel along this axis
};
using Layout = std::vector<Segment>;

// One axis of one parameter or buffer, described by the layout that covers it entirely.
struct ParamAxis {
  std::string param;  // dotted attribute path, e.g. "features.0.weight"
  int axis = 0;
  Layout layout;
};

// A graph constant that must follow the kept channels: a depthwise or grouped convolution's
// `groups`, or the feature count of a view/reshape feeding a linear layer.
struct ConstantRewrite {
  torch::jit::Node* node = nullptr;
  size_t input = 0;
  int list_index = -1;  // >= 0: element of a constant int[] input; -1: the int input itself
  Layout layout;        // the new value is the kept size of this layout ...
  int64_t divisor = 1;  // ... divided by this (a grouped convolution's channels per group)
};

// A convolution or linear layer, for MACs: macs = factor · kept(in)/groups · kept(out).
struct LayerShape {
  std::string name;  // weight path
  Layout in, out;
  int64_t factor = 0;       // batch · output positions · kernel area
  // macs = factor · kept(out): every output channel reads a fixed number of input channels
  // (depthwise and grouped convolutions, whose factor includes the channels per group).
  bool depthwise = false;
  int64_t fixed_macs = -1;  // >= 0 for a layer outside every group (not pruned)
};

// A tensor value of the graph, for peak activation memory.
struct ActivationValue {
  int64_t bytes = 0;  // at the master's widths
  Layout layout;      // empty: not scaled by pruning
  int64_t total = 0;  // the channel axis' size
  size_t first = 0, last = 0;  // node positions where it is live
};

struct Space {
  int64_t size = 0;
  bool frozen = false;
  std::string name;  // producer's weight path
  // Channels are kept or removed in aligned runs of this many: the channels per group of a
  // grouped convolution that reads and writes this space (a group goes whole or not at all).
  int64_t block = 1;
};

struct ChannelGroup {
  int root = 0;
  std::string name;                   // first producer's weight path
  int64_t width = 0;                  // channels now
  int64_t block = 1;                  // see Space::block; width is a multiple of it
  std::vector<size_t> producer_axes;  // indices into param_axes: output axes of producers
  std::vector<size_t> member_axes;    // every axis touched by this group
};

struct Analysis {
  std::vector<Space> spaces;
  std::vector<int> parent;  // union-find
  std::vector<ParamAxis> param_axes;
  std::vector<ConstantRewrite> rewrites;
  std::vector<ChannelGroup> groups;  // prunable groups only
  std::set<std::string> frozen_ops;  // operators that froze channels
  std::vector<LayerShape> layers;
  std::vector<ActivationValue> activations;
  std::map<std::string, std::vector<int64_t>> tensors;  // every parameter and buffer: shape
  std::set<std::string> parameters;                     // which of them are parameters
  std::vector<int64_t> output_shape;

  int Find(int s) const;
  const ChannelGroup* GroupOf(int space) const;
};

// Kept channel indices (sorted, unique; whole aligned blocks where the group has a block > 1) per
// group root; groups absent keep everything.
using KeepPlan = std::map<int, std::vector<int64_t>>;

int64_t KeptChannels(const Analysis& a, const KeepPlan& plan, int space);
int64_t KeptSize(const Analysis& a, const KeepPlan& plan, const Layout& layout);
int64_t TotalSize(const Layout& layout);

// Analyzes the module's forward graph; input_shape includes the batch (e.g. {1, 1, 28, 28}).
Result<Analysis> Analyze(const EvalModule& m, const std::vector<int64_t>& input_shape);

}  // namespace edgeprune::pruning
