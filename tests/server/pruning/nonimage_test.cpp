// Non-image nets (tests/fixtures/pruning1d, made by its script): 1-D signals through Conv1d,
// BatchNorm1d and max, average and adaptive pooling over one axis flattened into Linear layers,
// and feature vectors through Linear → BatchNorm1d → ReLU MLPs. The engine's MACs and parameters
// equal PyTorch's forward-hook counts for the master and for the net built at the narrower widths
// the test prunes to; the batch norms fold into the convolutions and linear layers before them;
// both forms prune to 2× fewer MACs into valid models whose accuracy is measured.

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "support/build_paths.hpp"
#include "server/models/evaluate.hpp"
#include "server/models/layers.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/batch_norm.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/pipeline.hpp"
#include "server/pruning/shrink.hpp"

namespace edgeprune::pruning {
namespace {

std::string Dir() { return edgeprune::testing::SourceDir() + "/tests/fixtures/pruning1d/"; }

std::string Bytes(const std::string& net, const std::string& form) {
  auto b = ReadModelBytes(Dir() + net + "_" + form + ".pt");
  EXPECT_TRUE(b.ok()) << net << " " << form;
  return b.ok() ? *b : "";
}

struct Reference {
  std::vector<int64_t> shape;  // one sample, no batch
  int64_t macs = 0;
  int64_t params = 0;
};

// reference.txt: `<net>[@narrow] <shape> <macs> <params>`, counted with forward hooks in PyTorch.
const std::map<std::string, Reference>& References() {
  static const std::map<std::string, Reference> refs = [] {
    std::map<std::string, Reference> out;
    std::ifstream in(Dir() + "reference.txt");
    std::string name, shape;
    Reference r;
    while (in >> name >> shape >> r.macs >> r.params) {
      r.shape.clear();
      std::istringstream dims(shape);
      for (std::string d; std::getline(dims, d, ',');) r.shape.push_back(std::stoll(d));
      out[name] = r;
    }
    return out;
  }();
  return refs;
}

std::vector<int64_t> Batch(int64_t n, const std::vector<int64_t>& sample) {
  std::vector<int64_t> s = {n};
  s.insert(s.end(), sample.begin(), sample.end());
  return s;
}

// Widths the narrow twins keep, per group (named by its first producer's weight).
const std::map<std::string, std::map<std::string, int64_t>>& NarrowWidths() {
  static const std::map<std::string, std::map<std::string, int64_t>> widths = {
      {"signal_cnn",
       {{"conv1.weight", 8}, {"conv2.weight", 16}, {"conv3.weight", 24}, {"conv4.weight", 16},
        {"fc1.weight", 8}}},
      {"feature_mlp", {{"fc1.weight", 24}, {"fc2.weight", 16}}},
  };
  return widths;
}

torch::jit::Module LoadPlain(const std::string& bytes) {
  std::istringstream in(bytes);
  auto m = torch::jit::load(in);
  m.eval();
  return m;
}

int CountNodes(const EvalModule& m, const char* kind) {
  int n = 0;
  for (auto* node : m.graph->nodes()) n += node->kind().toQualString() == std::string(kind);
  return n;
}

TEST(NonImageNets, ReferenceCountsAreCommitted) {
  for (const auto& [net, widths] : NarrowWidths()) {
    EXPECT_TRUE(References().count(net)) << net;
    EXPECT_TRUE(References().count(net + "@narrow")) << net;
  }
}

TEST(NonImageNets, EngineCostsEqualForwardHookCounts) {
  for (const auto& [net, widths] : NarrowWidths()) {
    const Reference& ref = References().at(net);
    for (const char* form : {"scripted", "traced"}) {
      auto cost = ModelCost(Bytes(net, form), ref.shape);
      ASSERT_TRUE(cost.ok()) << net << " " << form << ": " << cost.error().ToString();
      EXPECT_EQ(cost->macs, ref.macs) << net << " " << form;
      EXPECT_EQ(cost->params, ref.params) << net << " " << form;
    }
  }
}

TEST(NonImageNets, EveryLayerIsPrunableAndBothFormsAgree) {
  // Conv1d outputs through BatchNorm1d and every pooling over one axis, the flatten into fc1 (4
  // features per channel), and each hidden Linear → BatchNorm1d: nothing freezes.
  for (const auto& [net, widths] : NarrowWidths()) {
    std::map<std::string, int64_t> groups[2];
    int i = 0;
    for (const char* form : {"scripted", "traced"}) {
      SCOPED_TRACE(net + " " + form);
      auto m = LoadEvalModule(Bytes(net, form), net);
      ASSERT_TRUE(m.ok()) << m.error().ToString();
      auto a = Analyze(*m, Batch(1, References().at(net).shape));
      ASSERT_TRUE(a.ok()) << a.error().ToString();
      EXPECT_TRUE(a->frozen_ops.empty()) << *a->frozen_ops.begin();
      for (const auto& g : a->groups) groups[i][g.name] = g.width;
      EXPECT_EQ(groups[i].size(), widths.size());
      for (const auto& [name, width] : widths) EXPECT_TRUE(groups[i].count(name)) << name;
      ++i;
    }
    EXPECT_EQ(groups[0], groups[1]) << net;
  }
}

TEST(NonImageNets, PrunedToNarrowWidthsCostsWhatTheNarrowNetMeasures) {
  torch::manual_seed(3);
  for (const auto& [net, widths] : NarrowWidths()) {
    const Reference& ref = References().at(net);
    const Reference& narrow = References().at(net + "@narrow");
    for (const char* form : {"scripted", "traced"}) {
      SCOPED_TRACE(net + " " + form);
      auto m = LoadEvalModule(Bytes(net, form), net);
      ASSERT_TRUE(m.ok());
      auto a = Analyze(*m, Batch(1, ref.shape));
      ASSERT_TRUE(a.ok());
      KeepPlan plan;
      for (const auto& g : a->groups) {
        const int64_t k = widths.at(g.name), step = g.width / k;  // spread over the channels
        std::vector<int64_t> keep(static_cast<size_t>(k));
        for (int64_t c = 0; c < k; ++c) keep[static_cast<size_t>(c)] = c * step;
        plan[g.root] = keep;
      }
      EXPECT_EQ(EstimateCost(*a, plan).macs, narrow.macs);
      ASSERT_TRUE(Shrink(*m, *a, plan, Batch(1, ref.shape)).ok());
      auto bytes = SaveModuleBytes(m->module);
      ASSERT_TRUE(bytes.ok());
      auto cost = ModelCost(*bytes, ref.shape);
      ASSERT_TRUE(cost.ok()) << cost.error().ToString();
      EXPECT_EQ(cost->macs, narrow.macs);
      EXPECT_EQ(cost->params, narrow.params);
      auto y = LoadPlain(*bytes).forward({torch::randn(Batch(3, ref.shape))}).toTensor();
      EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{3, 10}));
      EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
    }
  }
}

TEST(NonImageNets, BatchNormsFoldIntoConv1dAndLinearLayers) {
  const std::map<std::string, int> expected = {{"signal_cnn", 4}, {"feature_mlp", 2}};
  torch::manual_seed(4);
  for (const auto& [net, folds] : expected) {
    const Reference& ref = References().at(net);
    for (const char* form : {"scripted", "traced"}) {
      SCOPED_TRACE(net + " " + form);
      const at::Tensor x = torch::randn(Batch(5, ref.shape));
      auto reference = LoadEvalModule(Bytes(net, form), net);
      auto m = LoadEvalModule(Bytes(net, form), net);
      ASSERT_TRUE(reference.ok() && m.ok());
      auto before = RunForward(reference->module, x, net);
      ASSERT_TRUE(before.ok());
      auto folded = FoldBatchNorm(*m, Batch(1, ref.shape));
      ASSERT_TRUE(folded.ok()) << folded.error().ToString();
      EXPECT_EQ(*folded, folds);
      EXPECT_EQ(CountNodes(*m, "aten::batch_norm"), 0);
      auto after = RunForward(m->module, x, net);
      ASSERT_TRUE(after.ok());
      EXPECT_LT((*after - *before).abs().max().item<double>(), 1e-4);
      // The emitted file costs what the master did: the fold removes operators, not MACs.
      auto bytes = SaveModuleBytes(m->module);
      ASSERT_TRUE(bytes.ok());
      auto cost = ModelCost(*bytes, ref.shape);
      ASSERT_TRUE(cost.ok());
      EXPECT_EQ(cost->macs, ref.macs);
    }
  }
}

TEST(NonImageNets, LinearOverTheLastAxisKeepsTheBatchNormOfAnotherAxis) {
  // linear on [N, 4, 4] maps the last axis; a batch norm of 4 channels normalizes axis 1. Their
  // sizes match but they act on different axes: folding would be wrong, so nothing folds.
  auto cu = models::NewCompilationUnit();
  auto mod = models::NewModule(cu, "LinearThenNorm");
  mod.register_parameter("w", torch::randn({4, 4}), false);
  mod.register_parameter("b", torch::randn({4}), false);
  mod.register_parameter("gamma", torch::rand({4}) + 0.5, false);
  mod.register_parameter("beta", torch::randn({4}), false);
  mod.register_buffer("mean", torch::randn({4}));
  mod.register_buffer("var", torch::rand({4}) + 0.5);
  mod.define(
      "def forward(self, x):\n"
      "    y = torch.linear(x, self.w, self.b)\n"
      "    return torch.batch_norm(y, self.gamma, self.beta, self.mean, self.var, False, 0.1, "
      "1e-05, False)\n");
  auto bytes = SaveModuleBytes(mod);
  ASSERT_TRUE(bytes.ok());
  auto m = LoadEvalModule(*bytes, "linear-3d");
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  auto folded = FoldBatchNorm(*m, {1, 4, 4});
  ASSERT_TRUE(folded.ok()) << folded.error().ToString();
  EXPECT_EQ(*folded, 0);
  EXPECT_EQ(CountNodes(*m, "aten::batch_norm"), 1);
}

// 10 classes that a small net tells apart: signals are class-dependent sinusoids (frequency
// 2 + class cycles per window, random phase per channel) plus noise; feature vectors are a
// class-dependent centre plus noise.
models::DatasetSplits Learnable(const std::vector<int64_t>& sample, int64_t train, int64_t test) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(21);
  auto make = [&](int64_t n, const std::string& name) {
    models::Dataset d;
    d.name = name;
    d.labels = torch::randint(10, {n}, gen, torch::kInt64);
    if (sample.size() == 2) {
      auto t = torch::arange(sample[1], torch::kFloat).div(double(sample[1]));
      auto freq = (d.labels.to(torch::kFloat) + 2.0).view({n, 1, 1});
      auto phase = torch::rand({n, sample[0], 1}, gen) * 6.2832;
      d.images = torch::sin(freq * 6.2832 * t.view({1, 1, -1}) + phase) +
                 0.3 * torch::randn(Batch(n, sample), gen);
    } else {
      auto centres = torch::randn({10, sample[0]}, at::make_generator<at::CPUGeneratorImpl>(5));
      d.images = centres.index_select(0, d.labels) + 0.5 * torch::randn(Batch(n, sample), gen);
    }
    for (int k = 0; k < 10; ++k) d.class_names.push_back("c" + std::to_string(k));
    return d;
  };
  models::SplitOptions split;
  split.validation_size = 64;
  split.calibration_size = 128;
  auto s = models::MakeSplits(make(train, "train"), make(test, "test"), split);
  EXPECT_TRUE(s.ok()) << s.error().ToString();
  return *s;
}

TEST(NonImageNets, EachFormPrunesToHalfTheMacsIntoAValidModel) {
  for (const auto& [net, widths] : NarrowWidths()) {
    const Reference& ref = References().at(net);
    const models::DatasetSplits data = Learnable(ref.shape, 1024, 256);
    for (const char* form : {"scripted", "traced"}) {
      SCOPED_TRACE(net + " " + form);
      PruneOptions o;
      o.input_shape = ref.shape;
      o.criterion = Criterion::kTaylor;
      o.budget.max_macs = ref.macs / 2;
      o.between_steps = FinetuneOptions{.steps = 20, .seconds = 20.0};
      o.final_tune = FinetuneOptions{.steps = 300, .seconds = 60.0};
      auto r = Prune(Bytes(net, form), &data, o);
      ASSERT_TRUE(r.ok()) << r.error().ToString();
      EXPECT_LE(r->cost.macs, *o.budget.max_macs);
      EXPECT_EQ(r->master_cost.macs, ref.macs);
      EXPECT_EQ(r->master_cost.params, ref.params);
      EXPECT_LT(r->cost.params, r->master_cost.params);
      EXPECT_GT(r->folded_batch_norms, 0);
      // The emitted file's own cost is what the result says.
      auto measured = ModelCost(r->variant, ref.shape);
      ASSERT_TRUE(measured.ok());
      EXPECT_EQ(measured->macs, r->cost.macs);
      EXPECT_EQ(measured->params, r->cost.params);
      auto variant = LoadPlain(r->variant);
      {
        torch::NoGradGuard no_grad;
        at::Tensor y = variant.forward({data.test.images.slice(0, 0, 4)}).toTensor();
        EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{4, 10}));
        EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
      }
      // Fine-tuned from a random master on an easy task: well above chance (10 %).
      auto acc = models::EvaluateAccuracy(variant, data.test);
      ASSERT_TRUE(acc.ok()) << acc.error().ToString();
      EXPECT_GT(acc->accuracy, 0.5) << net << " " << form;
    }
  }
}

}  // namespace
}  // namespace edgeprune::pruning
