// Small twins of torchvision's families (tests/fixtures/torchvision/families, made by torchvision's
// own classes with fewer channels): control flow on configuration attributes is folded without
// changing what the model computes, the engine's MACs and parameters equal the counts PyTorch's
// forward hooks measured, scripted and traced forms analyse identically, and each prunes to 2×
// fewer MACs into a valid TorchScript model.

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "support/build_paths.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/importance.hpp"
#include "server/pruning/pipeline.hpp"
#include "server/pruning/planner.hpp"

namespace edgeprune::pruning {
namespace {

const std::vector<int64_t> kInput = {1, 3, 32, 32};

std::string FamilyDir() {
  return edgeprune::testing::SourceDir() + "/tests/fixtures/torchvision/families/";
}

std::string Bytes(const std::string& family, const std::string& form) {
  auto b = ReadModelBytes(FamilyDir() + family + "_" + form + ".pt");
  EXPECT_TRUE(b.ok()) << family << " " << form;
  return b.ok() ? *b : "";
}

struct Reference {
  int64_t macs = 0;
  int64_t params = 0;
};

// reference.txt: `<family> <macs> <params>` per line, measured with forward hooks in PyTorch.
const std::map<std::string, Reference>& References() {
  static const std::map<std::string, Reference> refs = [] {
    std::map<std::string, Reference> out;
    std::ifstream in(FamilyDir() + "reference.txt");
    std::string name;
    Reference r;
    while (in >> name >> r.macs >> r.params) out[name] = r;
    return out;
  }();
  return refs;
}

std::vector<std::string> Families() {
  std::vector<std::string> names;
  for (const auto& [name, ref] : References()) names.push_back(name);
  return names;
}

torch::jit::Module LoadPlain(const std::string& bytes) {
  std::istringstream in(bytes);
  auto m = torch::jit::load(in);
  m.eval();
  return m;
}

bool HasNestedOperator(torch::jit::Block* b, bool nested) {
  static const std::set<std::string> real = {
      "aten::conv2d", "aten::_convolution", "aten::linear", "aten::batch_norm",
      "aten::cat",    "aten::add",          "aten::add_",   "aten::mul"};
  for (auto* n : b->nodes()) {
    if (nested && real.count(n->kind().toQualString())) return true;
    for (auto* inner : n->blocks()) {
      if (HasNestedOperator(inner, true)) return true;
    }
  }
  return false;
}

TEST(TorchvisionFamilies, ReferenceCountsAreCommitted) { EXPECT_EQ(References().size(), 8u); }

TEST(TorchvisionFamilies, FoldingKeepsWhatTheModelComputes) {
  torch::manual_seed(7);
  const at::Tensor x = torch::randn({2, 3, 32, 32});
  for (const auto& family : Families()) {
    for (const char* form : {"scripted", "traced"}) {
      SCOPED_TRACE(family + " " + form);
      const std::string bytes = Bytes(family, form);
      auto original = LoadPlain(bytes);
      at::Tensor expected;
      {
        torch::NoGradGuard no_grad;
        expected = original.forward({x}).toTensor();
      }
      auto m = LoadEvalModule(bytes, family);
      ASSERT_TRUE(m.ok()) << m.error().ToString();
      // Every real operator sits in the top block, where cost model and analysis look.
      EXPECT_FALSE(HasNestedOperator(m->graph->block(), false)) << *m->graph;
      auto folded = RunForward(m->module, x, family);
      ASSERT_TRUE(folded.ok()) << folded.error().ToString();
      EXPECT_TRUE(torch::allclose(*folded, expected, 1e-4, 1e-5));
      // The prepared module saves and loads as TorchScript and still computes the same.
      auto saved = SaveModuleBytes(m->module);
      ASSERT_TRUE(saved.ok());
      auto again = LoadPlain(*saved);
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::allclose(again.forward({x}).toTensor(), expected, 1e-4, 1e-5));
    }
  }
}

TEST(TorchvisionFamilies, EngineCostsEqualForwardHookCounts) {
  for (const auto& [family, ref] : References()) {
    for (const char* form : {"scripted", "traced"}) {
      auto cost = ModelCost(Bytes(family, form), {3, 32, 32});
      ASSERT_TRUE(cost.ok()) << family << " " << form << ": " << cost.error().ToString();
      EXPECT_EQ(cost->macs, ref.macs) << family << " " << form;
      EXPECT_EQ(cost->params, ref.params) << family << " " << form;
    }
  }
}

// What the analysis of one form concludes, in terms both forms share (attribute paths).
struct Summary {
  Cost cost;
  std::map<std::string, int64_t> groups;  // group name → width
  std::set<std::string> frozen_ops;
  std::map<std::string, std::vector<int64_t>> plan;  // group name → kept channels
  Cost planned;
};

Summary Summarize(const std::string& family, const std::string& form) {
  Summary s;
  auto m = LoadEvalModule(Bytes(family, form), family);
  EXPECT_TRUE(m.ok());
  if (!m.ok()) return s;
  auto a = Analyze(*m, kInput);
  EXPECT_TRUE(a.ok()) << a.error().ToString();
  if (!a.ok()) return s;
  s.cost = EstimateCost(*a, {});
  for (const auto& g : a->groups) s.groups[g.name] = g.width;
  s.frozen_ops = a->frozen_ops;
  auto scores = ScoreChannels(*m, *a, Criterion::kL1);
  EXPECT_TRUE(scores.ok());
  if (!scores.ok()) return s;
  Budget target;
  target.max_macs = s.cost.macs / 2;
  Planner planner(*a, *scores, {}, PlanOptions{});
  auto plan = planner.ForBudget(target, &s.planned);
  if (!plan.ok()) return s;
  for (const auto& [root, kept] : *plan) s.plan[a->GroupOf(root)->name] = kept;
  return s;
}

TEST(TorchvisionFamilies, ScriptedAndTracedTwinsAnalyseIdentically) {
  for (const auto& family : Families()) {
    SCOPED_TRACE(family);
    Summary scripted = Summarize(family, "scripted");
    Summary traced = Summarize(family, "traced");
    EXPECT_EQ(scripted.cost.macs, traced.cost.macs);
    EXPECT_EQ(scripted.cost.params, traced.cost.params);
    EXPECT_EQ(scripted.cost.param_bytes, traced.cost.param_bytes);
    EXPECT_EQ(scripted.groups, traced.groups);
    EXPECT_FALSE(scripted.groups.empty());
    EXPECT_EQ(scripted.plan, traced.plan);
    EXPECT_EQ(scripted.planned.macs, traced.planned.macs);
    EXPECT_EQ(scripted.planned.params, traced.planned.params);
  }
}

TEST(TorchvisionFamilies, SqueezeExcitationGatesJoinTheGroupTheyScale) {
  // x * gate with gate [N, C, 1, 1] computed from x: channel c of x and gate channel c go
  // together, so the expanded channels of MobileNetV3 and EfficientNet blocks stay prunable.
  for (const char* family : {"mobilenet_v3_small", "efficientnet_b0"}) {
    for (const char* form : {"scripted", "traced"}) {
      SCOPED_TRACE(std::string(family) + " " + form);
      auto m = LoadEvalModule(Bytes(family, form), family);
      ASSERT_TRUE(m.ok());
      auto a = Analyze(*m, kInput);
      ASSERT_TRUE(a.ok());
      EXPECT_EQ(a->frozen_ops.count("aten::mul"), 0u);
      int gates = 0;
      for (const auto& pa : a->param_axes) {
        const std::string suffix = "fc2.weight";
        if (pa.axis != 0 || pa.param.size() < suffix.size() ||
            pa.param.compare(pa.param.size() - suffix.size(), suffix.size(), suffix) != 0) {
          continue;
        }
        ++gates;
        ASSERT_EQ(pa.layout.size(), 1u);
        const ChannelGroup* g = a->GroupOf(pa.layout[0].space);
        ASSERT_NE(g, nullptr) << pa.param;
        // The group also holds the convolution whose output the gate scales.
        EXPECT_GE(g->producer_axes.size(), 2u) << pa.param;
      }
      EXPECT_GT(gates, 0);
    }
  }
}

TEST(TorchvisionFamilies, EachFormPrunesToHalfTheMacsIntoAValidModel) {
  torch::manual_seed(8);
  const at::Tensor x = torch::randn({2, 3, 32, 32});
  for (const auto& family : Families()) {
    for (const char* form : {"scripted", "traced"}) {
      SCOPED_TRACE(family + " " + form);
      const std::string master = Bytes(family, form);
      PruneOptions o;
      o.input_shape = {3, 32, 32};
      o.criterion = Criterion::kL1;
      o.budget.max_macs = References().at(family).macs / 2;
      auto r = Prune(master, nullptr, o);
      EXPECT_TRUE(r.ok()) << r.error().ToString();
      if (!r.ok()) continue;
      EXPECT_LE(r->cost.macs, *o.budget.max_macs);
      EXPECT_LT(r->cost.params, r->master_cost.params);
      auto variant = LoadPlain(r->variant);
      torch::NoGradGuard no_grad;
      at::Tensor y = variant.forward({x}).toTensor();
      EXPECT_EQ(y.sizes().vec(), (std::vector<int64_t>{2, 10}));
      EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
      // The emitted file's own cost is what the result says.
      auto measured = ModelCost(r->variant, {3, 32, 32});
      ASSERT_TRUE(measured.ok());
      EXPECT_EQ(measured->macs, r->cost.macs);
    }
  }
}

}  // namespace
}  // namespace edgeprune::pruning
