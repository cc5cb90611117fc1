// Convolutions and linear layers whose bias is an Optional[Tensor] attribute holding None — what
// torch.jit.script makes of torch.nn's `bias=False` — through analysis, shrink, every importance
// criterion, the pipeline (fine-tuning, folding) and the server's variant builder. The fixtures
// have such convolutions only; this model has linear layers without bias too.

#include <gtest/gtest.h>

#include "server/pruning/fixtures.hpp"
#include "server/models/layers.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/pipeline.hpp"
#include "server/pruning/shrink.hpp"
#include "server/model_worker/variant_build.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::pruning {
namespace {

// Builds go through the model worker's adapter over Prune(), as the server runs them.
using catalog::VariantBuildOptions;
using model_worker::MakeVariantBuilder;

// A module whose `bias` attribute is typed Optional[Tensor] and holds None.
torch::jit::Module WithoutBias(const models::CompilationUnitPtr& cu, const std::string& type,
                               const at::Tensor& weight, const std::string& call) {
  auto m = models::NewModule(cu, type);
  m.register_parameter("weight", weight, false);
  m.register_attribute("bias", c10::OptionalType::create(c10::TensorType::get()), c10::IValue(),
                       /*is_param=*/true);
  m.define("def forward(self, x):\n    return " + call + "\n");
  return m;
}

// conv(no bias) → bn → relu → flatten → linear(no bias) → relu → linear(no bias), on 1×8×8.
std::string MasterBytes() {
  torch::manual_seed(3);
  auto cu = models::NewCompilationUnit();
  auto conv = WithoutBias(cu, "Conv", torch::randn({16, 1, 3, 3}) * 0.3,
                          "torch.conv2d(x, self.weight, self.bias, [1, 1], [1, 1], [1, 1], 1)");
  auto bn = models::MakeBatchNorm2dFrom(cu, torch::rand({16}) + 0.5, torch::randn({16}) * 0.1,
                                        torch::randn({16}) * 0.1, torch::rand({16}) + 0.5);
  auto fc1 = WithoutBias(cu, "Fc1", torch::randn({32, 16 * 4 * 4}) * 0.05,
                         "torch.linear(x, self.weight, self.bias)");
  auto fc2 = WithoutBias(cu, "Fc2", torch::randn({10, 32}) * 0.2,
                         "torch.linear(x, self.weight, self.bias)");
  auto top = models::NewModule(cu, "NoBiasNet");
  top.register_module("conv", conv);
  top.register_module("bn", bn);
  top.register_module("fc1", fc1);
  top.register_module("fc2", fc2);
  top.define(
      "def forward(self, x):\n"
      "    x = torch.relu(self.bn.forward(self.conv.forward(x)))\n"
      "    x = torch.max_pool2d(x, [2, 2], [2, 2])\n"
      "    x = torch.flatten(x, 1)\n"
      "    x = torch.relu(self.fc1.forward(x))\n"
      "    return self.fc2.forward(x)\n");
  top.eval();
  auto bytes = SaveModuleBytes(top);
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

models::DatasetSplits Data() {
  auto d = fixtures::SmallSyntheticData(8);
  EXPECT_TRUE(d.ok()) << d.error().ToString();
  return *d;
}

TEST(OptionalBias, AnalysisPrunesLayersWithoutBiasAndShrinkKeepsThemWithout) {
  auto m = LoadEvalModule(MasterBytes(), "no-bias");
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  auto a = Analyze(*m, {1, 1, 8, 8});
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_TRUE(a->frozen_ops.empty());
  ASSERT_EQ(a->groups.size(), 2u);  // conv's channels, fc1's neurons; fc2 feeds the output
  for (const auto& pa : a->param_axes) {
    EXPECT_TRUE(GetTensorAttr(m->module, pa.param).ok()) << pa.param;
  }
  KeepPlan plan;
  for (const auto& g : a->groups) plan[g.root] = {0, 2, 5, 7};
  ASSERT_TRUE(Shrink(*m, *a, plan, {1, 1, 8, 8}).ok());
  EXPECT_EQ(GetTensorAttr(m->module, "conv.weight")->sizes().vec(),
            (std::vector<int64_t>{4, 1, 3, 3}));
  EXPECT_EQ(GetTensorAttr(m->module, "fc1.weight")->sizes().vec(),
            (std::vector<int64_t>{4, 4 * 4 * 4}));
  EXPECT_EQ(GetTensorAttr(m->module, "fc2.weight")->sizes().vec(),
            (std::vector<int64_t>{10, 4}));
  EXPECT_TRUE(m->module.attr("fc1").toModule().attr("bias").isNone());
}

TEST(OptionalBias, EveryCriterionPrunesFineTunesAndFolds) {
  std::string master = MasterBytes();
  auto data = Data();
  auto cost = ModelCost(master, {1, 8, 8});
  ASSERT_TRUE(cost.ok()) << cost.error().ToString();
  for (Criterion c : {Criterion::kL1, Criterion::kL2, Criterion::kBnScale, Criterion::kTaylor}) {
    PruneOptions o;
    o.input_shape = {1, 8, 8};
    o.criterion = c;
    o.budget.max_param_bytes = cost->param_bytes / 2;
    o.calibration_batches = 2;
    o.between_steps.steps = 2;
    o.final_tune.steps = 3;
    auto r = Prune(master, &data, o);
    ASSERT_TRUE(r.ok()) << CriterionName(c) << ": " << r.error().ToString();
    EXPECT_LE(r->cost.param_bytes, *o.budget.max_param_bytes) << CriterionName(c);
    EXPECT_GT(r->finetune_steps, 0);
    EXPECT_EQ(r->folded_batch_norms, 1);
    auto v = LoadEvalModule(r->variant, "variant");
    ASSERT_TRUE(v.ok());
    auto out = RunForward(v->module, torch::randn({2, 1, 8, 8}), "variant");
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(out->sizes().vec(), (std::vector<int64_t>{2, 10}));
  }
}

TEST(OptionalBias, ServerVariantBuilderBuildsIt) {
  testing::TempDir dir;
  std::string master = MasterBytes();
  std::string path = dir.File("master.pt");
  ASSERT_TRUE(WriteFileAtomically(path, master).ok());
  auto cost = ModelCost(master, {1, 8, 8});
  ASSERT_TRUE(cost.ok());
  VariantBuildOptions options;
  options.train_limit = 256;
  options.test_limit = 64;
  options.finetune_steps = 3;
  options.step_finetune_steps = 2;
  catalog::BuildRequest r;
  r.master_path = path;
  r.input_shape = {1, 1, 8, 8};
  r.num_classes = 10;
  r.dataset = "synthetic:1x8x8:10";
  r.budget.max_macs = cost->macs / 2;
  r.work_dir = dir.Subdir("work");
  r.output_path = dir.File("variant.pt");
  auto outcome = MakeVariantBuilder(options)(r);
  ASSERT_TRUE(outcome.ok()) << outcome.error().ToString();
  EXPECT_LE(outcome->macs, *r.budget.max_macs);
  auto v = ReadModelBytes(r.output_path);
  ASSERT_TRUE(v.ok());
  auto vc = ModelCost(*v, {1, 8, 8});
  ASSERT_TRUE(vc.ok()) << vc.error().ToString();
  EXPECT_EQ(vc->macs, outcome->macs);
}

}  // namespace
}  // namespace edgeprune::pruning
