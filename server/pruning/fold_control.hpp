#pragma once
// Folds the control flow a scripted model decides from its own configuration, so scripted and
// traced forms of one model reach the analysis with the same operators in the graph's top block.
//
// torch.jit.script keeps `if self.use_res_connect:` (MobileNetV2), `if self.memory_efficient and
// ...` (DenseNet), `if self.drop_rate > 0` or `if self.stride == 1` as prim::If on a module
// attribute read; the blocks inside are invisible to the cost model and freeze the channels they
// touch. Such attributes are configuration: plain bool/int/float/str/None values (and tuples of
// them) that forward never assigns. Their reads become constants, constant propagation then keeps
// only the branch taken, lists built by `append` become single list constructions (DenseNet's
// feature lists), and loops with a constant trip count are unrolled. Parameters and buffers stay
// module attributes (they are tensors, never folded), so they can still be sliced.
//
// Thread-safety: mutates the graph it is given; callers own the module and the graph.

#include <torch/script.h>

#include <memory>

namespace edgeprune::pruning {

// Folds configuration attributes of `root` read by `graph` (an inlined method of `root`, its
// first input is `self`) and simplifies the control flow they decide. Returns the number of
// attribute reads folded.
int FoldConfigurationFlow(const torch::jit::Module& root,
                          std::shared_ptr<torch::jit::Graph>& graph);

}  // namespace edgeprune::pruning
