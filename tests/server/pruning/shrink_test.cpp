// Dependency analysis and physical shrink on the Python-made fixtures, scripted and traced.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "server/pruning/fixtures.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/shrink.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::pruning {
namespace {

const std::vector<int64_t> kInput = {1, 1, 28, 28};

struct Loaded {
  std::string bytes;
  EvalModule module;
  Analysis analysis;
};

Loaded Load(const std::string& name) {
  auto bytes = ReadModelBytes(fixtures::FixturePath(name));
  EXPECT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto m = LoadEvalModule(*bytes, name);
  EXPECT_TRUE(m.ok()) << m.error().ToString();
  auto a = Analyze(*m, kInput);
  EXPECT_TRUE(a.ok()) << a.error().ToString();
  return Loaded{*bytes, std::move(*m), std::move(*a)};
}

// Keeps every other channel of every group (at least one).
KeepPlan HalfPlan(const Analysis& a) {
  KeepPlan plan;
  for (const auto& g : a.groups) {
    std::vector<int64_t> keep;
    for (int64_t c = 0; c < g.width; c += 2) keep.push_back(c);
    plan[g.root] = keep;
  }
  return plan;
}

int64_t CountParams(const torch::jit::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.named_parameters(true)) n += p.value.numel();
  return n;
}

const ChannelGroup* GroupNamed(const Analysis& a, const std::string& producer) {
  for (const auto& g : a.groups) {
    for (size_t i : g.producer_axes) {
      if (a.param_axes[i].param == producer) return &g;
    }
  }
  return nullptr;
}

class EveryFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryFixture, AnalysisFindsPrunableGroupsAndNeverTheOutput) {
  Loaded l = Load(GetParam());
  EXPECT_FALSE(l.analysis.groups.empty());
  EXPECT_TRUE(l.analysis.frozen_ops.empty())
      << "unexpected frozen op " << *l.analysis.frozen_ops.begin();
  EXPECT_EQ(l.analysis.output_shape, (std::vector<int64_t>{1, 10}));
  // The last linear layer's outputs are the model's outputs: never a group member on axis 0.
  for (const auto& g : l.analysis.groups) {
    for (size_t i : g.producer_axes) {
      auto shape = l.analysis.tensors.at(l.analysis.param_axes[i].param);
      EXPECT_NE(shape[0], 10) << l.analysis.param_axes[i].param;
    }
  }
}

TEST_P(EveryFixture, ShrunkVariantRunsKeepsOutputShapeAndMatchesCostEstimate) {
  Loaded l = Load(GetParam());
  KeepPlan plan = HalfPlan(l.analysis);
  Cost predicted = EstimateCost(l.analysis, plan);
  Cost before = EstimateCost(l.analysis, {});
  ASSERT_TRUE(Shrink(l.module, l.analysis, plan, kInput).ok());
  EXPECT_EQ(CountParams(l.module.module), predicted.params);
  EXPECT_LT(predicted.params, before.params);
  EXPECT_LT(predicted.macs, before.macs);
  at::Tensor x = torch::randn({3, 1, 28, 28});
  auto out = RunForward(l.module.module, x, "variant");
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->sizes().vec(), (std::vector<int64_t>{3, 10}));

  // Saved, reloaded with plain torch::jit::load: same outputs; re-analysed: same cost.
  testing::TempDir dir;
  auto bytes = SaveModuleBytes(l.module.module);
  ASSERT_TRUE(bytes.ok());
  std::string path = dir.File("variant.pt");
  ASSERT_TRUE(WriteFileAtomically(path, *bytes).ok());
  torch::jit::Module again = torch::jit::load(path);
  again.eval();
  auto out2 = RunForward(again, x, "reloaded");
  ASSERT_TRUE(out2.ok()) << out2.error().ToString();
  EXPECT_TRUE(torch::allclose(*out, *out2, 1e-5, 1e-6));
  auto re = LoadEvalModule(*bytes, "variant");
  ASSERT_TRUE(re.ok());
  auto ra = Analyze(*re, kInput);
  ASSERT_TRUE(ra.ok()) << ra.error().ToString();
  Cost after = EstimateCost(*ra, {});
  EXPECT_EQ(after.params, predicted.params);
  EXPECT_EQ(after.macs, predicted.macs);
  EXPECT_EQ(after.peak_activation_bytes, predicted.peak_activation_bytes);
}

// Channels whose every weight slice is zero (producers, batch-norm scale and shift, consumers)
// contribute nothing: removing them leaves the outputs unchanged.
TEST_P(EveryFixture, RemovingZeroedChannelsKeepsOutputs) {
  Loaded l = Load(GetParam());
  KeepPlan keep, removed;
  for (const auto& g : l.analysis.groups) {
    std::vector<int64_t> k, r;
    for (int64_t c = 0; c < g.width; ++c) (c % 3 == 1 ? r : k).push_back(c);
    keep[g.root] = k;
    removed[g.root] = r;
  }
  {
    torch::NoGradGuard no_grad;
    for (const auto& g : l.analysis.groups) {
      KeepPlan only;  // this group's removed channels, nothing of other groups
      for (const auto& h : l.analysis.groups) only[h.root] = {};
      only[g.root] = removed[g.root];
      for (size_t i : g.member_axes) {
        const ParamAxis& pa = l.analysis.param_axes[i];
        auto idx = KeptIndices(l.analysis, only, pa.layout);
        auto t = GetTensorAttr(l.module.module, pa.param);
        ASSERT_TRUE(t.ok());
        t->index_fill_(pa.axis, torch::tensor(idx, torch::kLong), 0.0);
      }
    }
  }
  at::Tensor x = torch::randn({4, 1, 28, 28});
  // The zeroed master's outputs, from an independent copy of the zeroed weights.
  auto zeroed_bytes = SaveModuleBytes(l.module.module);
  ASSERT_TRUE(zeroed_bytes.ok());
  std::istringstream in(*zeroed_bytes);
  torch::jit::Module zeroed = torch::jit::load(in);
  zeroed.eval();
  auto ref = RunForward(zeroed, x, "zeroed");
  ASSERT_TRUE(ref.ok());
  ASSERT_TRUE(Shrink(l.module, l.analysis, keep, kInput).ok());
  auto out = RunForward(l.module.module, x, "variant");
  ASSERT_TRUE(out.ok());
  EXPECT_LT((*out - *ref).abs().max().item<double>(), 1e-5);
}

TEST_P(EveryFixture, VariantLoadsInPython) {
  std::string python;
  for (const char* candidate : {"python3", "/usr/bin/python3"}) {
    std::string probe = std::string(candidate) + " -c 'import torch' >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) {
      python = candidate;
      break;
    }
  }
  if (python.empty()) GTEST_SKIP() << "python3 with torch is not installed";
  Loaded l = Load(GetParam());
  ASSERT_TRUE(Shrink(l.module, l.analysis, HalfPlan(l.analysis), kInput).ok());
  testing::TempDir dir;
  auto bytes = SaveModuleBytes(l.module.module);
  ASSERT_TRUE(bytes.ok());
  std::string path = dir.File("variant.pt");
  ASSERT_TRUE(WriteFileAtomically(path, *bytes).ok());
  std::string cmd = python + " -c \"import torch, sys; m = torch.jit.load(sys.argv[1]); "
                    "y = m(torch.zeros(2, 1, 28, 28)); assert tuple(y.shape) == (2, 10)\" " +
                    path;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EveryFixture, ::testing::ValuesIn(fixtures::AllFixtures()));

TEST(Analysis, ResidualAddSharesOneGroupAcrossProducers) {
  for (const char* name : {"resnet_scripted", "resnet_traced"}) {
    Loaded l = Load(name);
    const ChannelGroup* stem = GroupNamed(l.analysis, "stem.0.weight");
    ASSERT_NE(stem, nullptr) << name;
    EXPECT_EQ(stem, GroupNamed(l.analysis, "block1.conv2.weight")) << name;
    EXPECT_EQ(stem, GroupNamed(l.analysis, "block2.conv2.weight")) << name;
    EXPECT_EQ(GroupNamed(l.analysis, "down.0.weight"), GroupNamed(l.analysis, "proj.0.weight"));
    EXPECT_NE(GroupNamed(l.analysis, "block1.conv1.weight"), stem);
  }
}

TEST(Analysis, DepthwiseGroupsFollowKeptChannels) {
  for (const char* name : {"depthwise_scripted", "depthwise_traced"}) {
    Loaded l = Load(name);
    EXPECT_EQ(l.analysis.rewrites.size(), 2u) << name;  // groups of dw1 and dw2
    // The depthwise weight's output axis belongs to the stem's group.
    const ChannelGroup* stem = GroupNamed(l.analysis, "stem.0.weight");
    ASSERT_NE(stem, nullptr);
    bool dw_member = false;
    for (size_t i : stem->member_axes) {
      dw_member = dw_member || l.analysis.param_axes[i].param == "dw1.0.weight";
    }
    EXPECT_TRUE(dw_member) << name;
  }
}

TEST(Analysis, CatOffsetsBatchNormIndices) {
  for (const char* name : {"cat_scripted", "cat_traced"}) {
    Loaded l = Load(name);
    bool found = false;
    for (const auto& pa : l.analysis.param_axes) {
      if (pa.param == "bn.weight") {
        ASSERT_EQ(pa.layout.size(), 2u) << name;
        EXPECT_EQ(pa.layout[0].channels, 16);
        EXPECT_EQ(pa.layout[1].channels, 24);
        found = true;
      }
    }
    EXPECT_TRUE(found) << name;
  }
}

TEST(Analysis, FlattenMapsChannelsToFeatureBlocks) {
  for (const char* name : {"convbn_scripted", "convbn_traced"}) {
    Loaded l = Load(name);
    bool found = false;
    for (const auto& pa : l.analysis.param_axes) {
      if (pa.param == "fc1.weight" && pa.axis == 1) {
        ASSERT_EQ(pa.layout.size(), 1u);
        EXPECT_EQ(pa.layout[0].channels, 32);
        EXPECT_EQ(pa.layout[0].expand, 49);
        found = true;
      }
    }
    EXPECT_TRUE(found) << name;
    EXPECT_EQ(l.analysis.rewrites.size(), 1u) << name;  // the view's 1568
  }
}

TEST(Analysis, UnknownOperatorFreezesItsChannelsAndIsReported) {
  // A graph with an operator the analysis does not know (aten::flip) between two convolutions.
  auto m = torch::jit::Module("Net");
  m.register_parameter("w1", torch::randn({8, 1, 3, 3}), false);
  m.register_parameter("w2", torch::randn({4, 8, 3, 3}), false);
  m.define(R"(
    def forward(self, x):
        y = torch.conv2d(x, self.w1)
        y = torch.flip(y, [2])
        return torch.conv2d(y, self.w2).mean([2, 3])
  )");
  auto bytes = SaveModuleBytes(m);
  ASSERT_TRUE(bytes.ok());
  auto em = LoadEvalModule(*bytes, "flip");
  ASSERT_TRUE(em.ok());
  auto a = Analyze(*em, kInput);
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_TRUE(a->groups.empty());
  EXPECT_EQ(a->frozen_ops.count("aten::flip"), 1u);
}

TEST(BadInput, NotTorchScriptIsRejectedByName) {
  testing::TempDir dir;
  std::string path = dir.WriteFile("m.pt", "this is not a model");
  auto bytes = ReadModelBytes(path);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().code, "not_torchscript");
  EXPECT_FALSE(ReadModelBytes(dir.File("missing.pt")).ok());
  // A zip that is not TorchScript.
  auto fake = LoadEvalModule(std::string("PK\x03\x04garbage", 11), "fake.pt");
  ASSERT_FALSE(fake.ok());
  EXPECT_EQ(fake.error().code, "not_torchscript");
  EXPECT_NE(fake.error().message.find("fake.pt"), std::string::npos);
}

TEST(BadInput, WrongInputShapeIsNamed) {
  Loaded l = Load("convbn_traced");
  auto a = Analyze(l.module, {1, 3, 32, 32});
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, "input_shape_mismatch");
}

TEST(BadInput, InvalidPlansChangeNothing) {
  Loaded l = Load("convbn_scripted");
  const ChannelGroup& g = l.analysis.groups.front();
  auto before = GetTensorAttr(l.module.module, g.name);
  ASSERT_TRUE(before.ok());
  auto shape = before->sizes().vec();
  EXPECT_EQ(Shrink(l.module, l.analysis, {{g.root, {}}}, kInput).error().code, "empty_group");
  EXPECT_EQ(Shrink(l.module, l.analysis, {{g.root, {3, 1}}}, kInput).error().code,
            "invalid_plan");
  EXPECT_EQ(Shrink(l.module, l.analysis, {{g.root, {0, g.width}}}, kInput).error().code,
            "invalid_plan");
  EXPECT_EQ(GetTensorAttr(l.module.module, g.name)->sizes().vec(), shape);
}

}  // namespace
}  // namespace edgeprune::pruning
