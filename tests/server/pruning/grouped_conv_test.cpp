// Grouped (non-depthwise) convolutions (tests/fixtures/pruning1d/grouped_cnn_*, RegNet/ResNeXt-
// style blocks): a grouped convolution with as many output as input channels per group is pruned
// a whole group at a time, its `groups` rewritten; one whose groups widen (8 in, 16 out per
// group) is counted and frozen. Costs equal PyTorch's forward-hook counts before and after.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "support/build_paths.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/pipeline.hpp"
#include "server/pruning/shrink.hpp"

namespace edgeprune::pruning {
namespace {

const std::vector<int64_t> kSample = {3, 32, 32};
const std::vector<int64_t> kInput = {1, 3, 32, 32};

std::string Bytes(const std::string& form) {
  auto b = ReadModelBytes(edgeprune::testing::SourceDir() +
                          "/tests/fixtures/pruning1d/grouped_cnn_" + form + ".pt");
  EXPECT_TRUE(b.ok()) << form;
  return b.ok() ? *b : "";
}

struct Reference {
  int64_t macs = 0;
  int64_t params = 0;
};

// reference.txt's grouped_cnn lines (forward hooks in PyTorch): the master and its narrow twin.
Reference Ref(const std::string& name) {
  std::ifstream in(edgeprune::testing::SourceDir() + "/tests/fixtures/pruning1d/reference.txt");
  std::string net, shape;
  Reference r;
  while (in >> net >> shape >> r.macs >> r.params) {
    if (net == name) return r;
  }
  ADD_FAILURE() << "no reference for " << name;
  return {};
}

EvalModule Load(const std::string& form) {
  auto m = LoadEvalModule(Bytes(form), "grouped_cnn");
  EXPECT_TRUE(m.ok()) << m.error().ToString();
  return std::move(*m);
}

torch::jit::Module LoadPlain(const std::string& bytes) {
  std::istringstream in(bytes);
  auto m = torch::jit::load(in);
  m.eval();
  return m;
}

const ChannelGroup* Named(const Analysis& a, const std::string& name) {
  for (const auto& g : a.groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

TEST(GroupedConv, CostsEqualForwardHookCountsAndGroupsGoWhole) {
  const Reference ref = Ref("grouped_cnn");
  std::map<std::string, int64_t> widths[2];
  int i = 0;
  for (const char* form : {"scripted", "traced"}) {
    SCOPED_TRACE(form);
    auto cost = ModelCost(Bytes(form), kSample);
    ASSERT_TRUE(cost.ok()) << cost.error().ToString();
    EXPECT_EQ(cost->macs, ref.macs);
    EXPECT_EQ(cost->params, ref.params);
    EvalModule m = Load(form);
    auto a = Analyze(m, kInput);
    ASSERT_TRUE(a.ok()) << a.error().ToString();
    for (const auto& g : a->groups) widths[i][g.name] = g.width;
    // block1's 1x1 conv feeds its grouped conv (4 groups of 8): one group, kept in blocks of 8.
    const ChannelGroup* grouped = Named(*a, "block1.a.weight");
    ASSERT_NE(grouped, nullptr);
    EXPECT_EQ(grouped->width, 32);
    EXPECT_EQ(grouped->block, 8);
    EXPECT_EQ(Named(*a, "stem.weight")->block, 1);
    // block2's grouped conv widens its groups (8 → 16 channels): its input is frozen.
    EXPECT_EQ(Named(*a, "block2.a.weight"), nullptr);
    EXPECT_FALSE(a->frozen_ops.empty());
    ++i;
  }
  EXPECT_EQ(widths[0], widths[1]);
  EXPECT_EQ(widths[0], (std::map<std::string, int64_t>{{"stem.weight", 16},
                                                        {"block1.a.weight", 32},
                                                        {"block1.c.weight", 32},
                                                        {"block2.c.weight", 64}}));
}

TEST(GroupedConv, PruningWholeGroupsRewritesGroupsAndCostsWhatTheNarrowNetMeasures) {
  const Reference narrow = Ref("grouped_cnn@narrow");
  torch::manual_seed(9);
  const at::Tensor x = torch::randn({2, 3, 32, 32});
  for (const char* form : {"scripted", "traced"}) {
    SCOPED_TRACE(form);
    EvalModule m = Load(form);
    auto a = Analyze(m, kInput);
    ASSERT_TRUE(a.ok());
    auto first = [](int64_t n, int64_t step) {
      std::vector<int64_t> v;
      for (int64_t c = 0; c < n; ++c) v.push_back(c * step);
      return v;
    };
    KeepPlan plan;
    plan[Named(*a, "stem.weight")->root] = first(8, 2);
    // Groups 1 and 3 of 4: channels 8-15 and 24-31.
    std::vector<int64_t> groups13;
    for (int64_t c = 8; c < 16; ++c) groups13.push_back(c);
    for (int64_t c = 24; c < 32; ++c) groups13.push_back(c);
    plan[Named(*a, "block1.a.weight")->root] = groups13;
    plan[Named(*a, "block1.c.weight")->root] = first(16, 2);
    plan[Named(*a, "block2.c.weight")->root] = first(32, 2);
    EXPECT_EQ(EstimateCost(*a, plan).macs, narrow.macs);
    ASSERT_TRUE(Shrink(m, *a, plan, kInput).ok());
    auto bytes = SaveModuleBytes(m.module);
    ASSERT_TRUE(bytes.ok());
    auto cost = ModelCost(*bytes, kSample);
    ASSERT_TRUE(cost.ok()) << cost.error().ToString();
    EXPECT_EQ(cost->macs, narrow.macs);
    EXPECT_EQ(cost->params, narrow.params);
    // Two groups of 8 with groups=4 would not run: the constant followed the kept groups.
    torch::NoGradGuard no_grad;
    at::Tensor y = LoadPlain(*bytes).forward({x}).toTensor();
    EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 10}));
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  }
}

TEST(GroupedConv, APlanThatSplitsAGroupIsRefusedAndChangesNothing) {
  EvalModule m = Load("scripted");
  auto a = Analyze(m, kInput);
  ASSERT_TRUE(a.ok());
  const int root = Named(*a, "block1.a.weight")->root;
  auto before = GetTensorAttr(m.module, "block1.a.weight");
  ASSERT_TRUE(before.ok());
  const at::Tensor saved = before->clone();
  for (const std::vector<int64_t>& kept :
       {std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8},                // a group and a bit
        std::vector<int64_t>{4, 5, 6, 7, 8, 9, 10, 11},                 // straddles two groups
        std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16}}) {
    auto status = Shrink(m, *a, KeepPlan{{root, kept}}, kInput);
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, "invalid_plan");
  }
  auto after = GetTensorAttr(m.module, "block1.a.weight");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(torch::equal(*after, saved));
}

TEST(GroupedConv, EachFormPrunesToHalfTheMacsInWholeGroups) {
  const Reference ref = Ref("grouped_cnn");
  torch::manual_seed(10);
  const at::Tensor x = torch::randn({2, 3, 32, 32});
  for (const char* form : {"scripted", "traced"}) {
    SCOPED_TRACE(form);
    PruneOptions o;
    o.input_shape = kSample;
    o.criterion = Criterion::kL1;
    o.budget.max_macs = ref.macs / 2;
    auto r = Prune(Bytes(form), nullptr, o);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    EXPECT_LE(r->cost.macs, *o.budget.max_macs);
    EXPECT_EQ(r->master_cost.macs, ref.macs);
    bool found = false;
    for (const auto& w : r->widths) {
      if (w.name != "block1.b.weight") continue;
      found = true;
      EXPECT_EQ(w.kept % 8, 0) << w.kept;
    }
    EXPECT_TRUE(found);
    auto measured = ModelCost(r->variant, kSample);
    ASSERT_TRUE(measured.ok());
    EXPECT_EQ(measured->macs, r->cost.macs);
    torch::NoGradGuard no_grad;
    at::Tensor y = LoadPlain(r->variant).forward({x}).toTensor();
    EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 10}));
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  }
}

}  // namespace
}  // namespace edgeprune::pruning
