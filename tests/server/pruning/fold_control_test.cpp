// Folding of configuration attributes on modules scripted here (TorchScript source compiled by
// LibTorch): what is folded, what is not, and that the model computes the same either way.

#include <gtest/gtest.h>

#include <functional>
#include <sstream>

#include "server/pruning/analysis.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"

namespace edgeprune::pruning {
namespace {

// Two 3×3 convolutions; the residual and the activation are switched by configuration.
const char* kFlagged = R"JIT(
def forward(self, x):
    y = torch.conv2d(x, self.w1, None, [1, 1], [1, 1])
    if self.use_res:
        y = y + x
    if self.mode == 2:
        y = torch.relu(y)
    if self.scale is not None:
        y = y * 2.0
    return torch.conv2d(y, self.w2, None, [1, 1], [1, 1])
)JIT";

// The same, but forward assigns `calls`: state, which must stay a read at run time.
const char* kStateful = R"JIT(
def forward(self, x):
    self.calls = self.calls + 1
    y = torch.conv2d(x, self.w1, None, [1, 1], [1, 1])
    if self.calls > 1:
        y = y + x
    return torch.conv2d(y, self.w2, None, [1, 1], [1, 1])
)JIT";

std::string Scripted(const char* source, bool use_res) {
  torch::manual_seed(3);
  torch::jit::Module m("Net");
  m.register_parameter("w1", torch::randn({4, 4, 3, 3}), false);
  m.register_parameter("w2", torch::randn({4, 4, 3, 3}), false);
  m.register_attribute("use_res", c10::BoolType::get(), use_res);
  m.register_attribute("mode", c10::IntType::get(), int64_t{2});
  m.register_attribute("scale", c10::OptionalType::create(c10::FloatType::get()), c10::IValue());
  m.register_attribute("calls", c10::IntType::get(), int64_t{0});
  m.define(source);
  std::ostringstream out;
  m.save(out);
  return out.str();
}

int CountNested(torch::jit::Block* b, c10::Symbol kind) {
  int n = 0;
  for (auto* node : b->nodes()) {
    n += node->kind() == kind;
    for (auto* inner : node->blocks()) n += CountNested(inner, kind);
  }
  return n;
}

at::Tensor RunOriginal(const std::string& bytes, const at::Tensor& x) {
  std::istringstream in(bytes);
  auto m = torch::jit::load(in);
  torch::NoGradGuard no_grad;
  return m.forward({x}).toTensor();
}

TEST(FoldControl, ConfigurationBranchesBecomeStraightCode) {
  const at::Tensor x = torch::randn({1, 4, 8, 8});
  for (bool use_res : {true, false}) {
    const std::string bytes = Scripted(kFlagged, use_res);
    auto m = LoadEvalModule(bytes, "flagged");
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    EXPECT_EQ(CountNested(m->graph->block(), c10::prim::If), 0) << *m->graph;
    EXPECT_EQ(CountNested(m->graph->block(), c10::aten::relu), 1);
    EXPECT_EQ(CountNested(m->graph->block(), c10::aten::add), use_res ? 1 : 0);
    auto y = RunForward(m->module, x, "flagged");
    ASSERT_TRUE(y.ok());
    EXPECT_TRUE(torch::allclose(*y, RunOriginal(bytes, x)));
    // Both convolutions are counted and the residual couples them only when it is taken.
    auto a = Analyze(*m, {1, 4, 8, 8});
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(EstimateCost(*a, {}).macs, 2 * 64 * 4 * 4 * 9);
    // The parameters are still attributes: the analysis finds their axes.
    bool w1 = false;
    for (const auto& pa : a->param_axes) w1 = w1 || pa.param == "w1";
    EXPECT_TRUE(w1);
  }
}

TEST(FoldControl, AttributesForwardAssignsAreNotFolded) {
  const std::string bytes = Scripted(kStateful, true);
  auto m = LoadEvalModule(bytes, "stateful");
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  // The branch on `calls` stays: its value changes from one call to the next.
  EXPECT_EQ(CountNested(m->graph->block(), c10::prim::If), 1);
  const at::Tensor x = torch::randn({1, 4, 8, 8});
  auto first = RunForward(m->module, x, "stateful");
  auto second = RunForward(m->module, x, "stateful");
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_FALSE(torch::allclose(*first, *second));
}

}  // namespace
}  // namespace edgeprune::pruning
