// Budget fitting, importance, recovery and the report on the fixtures, with a synthetic data set
// of the fixtures' shape (1×28×28, 10 classes) so the tests need no downloaded data.

#include <gtest/gtest.h>

#include <sstream>

#include "server/pruning/fixtures.hpp"
#include "server/models/dataset.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/pipeline.hpp"
#include "server/pruning/planner.hpp"
#include "server/pruning/prune_command.hpp"
#include "server/pruning/report.hpp"
#include "server/pruning/sparsity.hpp"

namespace edgeprune::pruning {
namespace {

std::string Bytes(const std::string& name) { return fixtures::FixtureBytes(name); }

const models::DatasetSplits& Synthetic() {
  static const models::DatasetSplits data = [] {
    auto d = fixtures::SmallSyntheticData(28, 512, 128, 64);
    EXPECT_TRUE(d.ok()) << d.error().ToString();
    return *d;
  }();
  return data;
}

PruneOptions Quick() {
  PruneOptions o;
  o.input_shape = {1, 28, 28};
  o.criterion = Criterion::kL1;
  o.between_steps.steps = 3;
  o.final_tune.steps = 5;
  return o;
}

torch::jit::Module LoadBytes(const std::string& bytes) {
  std::istringstream in(bytes);
  auto m = torch::jit::load(in);
  m.eval();
  return m;
}

TEST(Prune, MeetsAMacsBudgetWithoutDataAndReportsEveryBound) {
  std::string master = Bytes("convbn_traced");
  auto mc = ModelCost(master, {1, 28, 28});
  ASSERT_TRUE(mc.ok());
  PruneOptions o = Quick();
  o.budget.max_macs = mc->macs / 4;
  o.budget.max_param_bytes = mc->param_bytes / 2;
  auto r = Prune(master, nullptr, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_LE(r->cost.macs, *o.budget.max_macs);
  EXPECT_LE(r->cost.param_bytes, *o.budget.max_param_bytes);
  ASSERT_EQ(r->bounds.size(), 2u);
  for (const auto& b : r->bounds) EXPECT_TRUE(b.ok) << b.name;
  EXPECT_GE(r->steps, 2);  // 4× in steps of at most 2×
  // Kept channels per layer: counts shrink, multiples of 8 where at least 16 are kept.
  ASSERT_FALSE(r->widths.empty());
  for (const auto& w : r->widths) {
    EXPECT_LE(w.kept, w.master) << w.name;
    EXPECT_GE(w.kept, 1) << w.name;
    if (w.kept >= 16 && w.kept < w.master) {
      EXPECT_EQ(w.kept % 8, 0) << w.name;
    }
  }
  auto variant = LoadBytes(r->variant);
  auto out = RunForward(variant, torch::randn({2, 1, 28, 28}), "variant");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->sizes().vec(), (std::vector<int64_t>{2, 10}));
}

TEST(Prune, PerLayerMinimumKeepRatioHolds) {
  std::string master = Bytes("convbn_scripted");
  auto mc = ModelCost(master, {1, 28, 28});
  ASSERT_TRUE(mc.ok());
  PruneOptions o = Quick();
  o.plan.min_keep_ratio = 0.5;
  o.budget.max_macs = mc->macs * 6 / 10;
  auto r = Prune(master, nullptr, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  for (const auto& w : r->widths) EXPECT_GE(w.kept * 2, w.master) << w.name;
}

TEST(Prune, UnreachableBudgetSaysSoWithTheSmallestReachableCost) {
  std::string master = Bytes("resnet_traced");
  PruneOptions o = Quick();
  o.budget.max_macs = 1000;  // far below what minimum widths reach
  auto r = Prune(master, nullptr, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "budget_unreachable");
  EXPECT_NE(r.error().message.find("smallest reachable"), std::string::npos);
}

TEST(Prune, BadBudgetsAreRejected) {
  std::string master = Bytes("mlp_traced");
  PruneOptions o = Quick();
  EXPECT_EQ(Prune(master, nullptr, o).error().code, "invalid_budget");  // bounds nothing
  o.budget.max_macs = 0;
  EXPECT_EQ(Prune(master, nullptr, o).error().code, "invalid_budget");
  o.budget.max_macs = -5;
  EXPECT_EQ(Prune(master, nullptr, o).error().code, "invalid_budget");
  o.budget.max_macs.reset();
  o.budget.max_latency_ms = 1.0;  // no latency model
  EXPECT_EQ(Prune(master, nullptr, o).error().code, "invalid_budget");
  o.budget.latency_model = LatencyModel{1e6, 2.0};  // overhead alone exceeds the bound
  EXPECT_EQ(Prune(master, nullptr, o).error().code, "budget_unreachable");
}

TEST(Prune, LatencyBoundGoesThroughTheDeviceLatencyModel) {
  std::string master = Bytes("depthwise_scripted");
  auto mc = ModelCost(master, {1, 28, 28});
  ASSERT_TRUE(mc.ok());
  PruneOptions o = Quick();
  o.budget.latency_model = LatencyModel{1e5, 0.5};  // 100k MACs per ms
  double master_ms = o.budget.latency_model->PredictMs(double(mc->macs));
  o.budget.max_latency_ms = 0.5 + (master_ms - 0.5) / 2;
  auto r = Prune(master, nullptr, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->bounds.size(), 1u);
  EXPECT_EQ(r->bounds[0].name, "latency_ms");
  EXPECT_LE(r->bounds[0].value, *o.budget.max_latency_ms);
}

TEST(Prune, TaylorImportanceAndDistillationOnResidualNet) {
  std::string master = Bytes("resnet_scripted");
  auto mc = ModelCost(master, {1, 28, 28});
  ASSERT_TRUE(mc.ok());
  PruneOptions o = Quick();
  o.criterion = Criterion::kTaylor;
  o.calibration_batches = 2;
  o.budget.max_param_bytes = mc->param_bytes / 2;
  auto r = Prune(master, &Synthetic(), o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_GT(r->finetune_steps, 0);
  EXPECT_LE(r->cost.param_bytes, *o.budget.max_param_bytes);
  VariantReport report{*r, {}, {}, "taylor", ""};
  auto json = ToJson(report);
  EXPECT_TRUE(json.at("bounds").as_array().at(0).as_object().at("ok").as_bool());
  EXPECT_FALSE(ToText(report).empty());
}

TEST(Prune, DatasetThatDoesNotMatchTheModelIsNamed) {
  std::string master = Bytes("cat_traced");
  auto mc = ModelCost(master, {1, 28, 28});
  ASSERT_TRUE(mc.ok());
  PruneOptions o = Quick();
  o.budget.max_macs = mc->macs / 2;
  models::SyntheticSpec spec;  // 3×32×32, 4 classes
  spec.train_size = 64;
  spec.test_size = 16;
  models::SplitOptions split;
  split.validation_size = 8;
  split.calibration_size = 8;
  auto wrong = models::MakeSyntheticDataset(spec, split);
  ASSERT_TRUE(wrong.ok());
  auto r = Prune(master, &*wrong, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "dataset_mismatch");
}

TEST(Sparsity, MagnitudeSparsityIsKeptThroughFineTuningAndCompresses) {
  std::string master = Bytes("convbn_traced");
  auto mc = ModelCost(master, {1, 28, 28});
  ASSERT_TRUE(mc.ok());
  PruneOptions o = Quick();
  o.budget.max_macs = mc->macs / 2;
  o.sparsity = 0.6;
  auto r = Prune(master, &Synthetic(), o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_GE(r->sparsity, 0.59);
  EXPECT_LT(r->compressed_bytes, static_cast<int64_t>(r->variant.size()) * 3 / 4);
  auto packed = Compress(r->variant);
  ASSERT_TRUE(packed.ok());
  auto back = Decompress(*packed, r->variant.size());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, r->variant);
  EXPECT_FALSE(Decompress("garbage", 100).ok());
}

TEST(Planner, GivesBackChannelsUntilNoRoundingUnitFits) {
  // Rounding kept counts to multiples of 8 can land far below the budget; the plan takes back
  // the best channels while the bound holds, so no group can take one more unit.
  for (const char* name : {"convbn_traced", "resnet_scripted", "depthwise_traced", "mlp_scripted"}) {
    auto m = LoadEvalModule(Bytes(name), name);
    ASSERT_TRUE(m.ok());
    auto a = Analyze(*m, {1, 1, 28, 28});
    ASSERT_TRUE(a.ok());
    auto scores = ScoreChannels(*m, *a, Criterion::kL1);
    ASSERT_TRUE(scores.ok());
    Budget target;
    target.max_macs = EstimateCost(*a, {}).macs * 3 / 10;
    Planner planner(*a, *scores, {}, PlanOptions{});
    Cost reached;
    auto plan = planner.ForBudget(target, &reached);
    ASSERT_TRUE(plan.ok()) << name << ": " << plan.error().ToString();
    EXPECT_LE(reached.macs, *target.max_macs) << name;
    for (const auto& g : a->groups) {
      auto it = plan->find(g.root);
      if (it == plan->end()) continue;  // keeps everything
      int64_t k = static_cast<int64_t>(it->second.size());
      int64_t next = k + 1 >= 16 ? std::max<int64_t>(16, (k / 8 + 1) * 8) : k + 1;
      next = std::min(next, g.width);
      KeepPlan more = *plan;
      more[g.root].clear();
      for (int64_t c = 0; c < next; ++c) more[g.root].push_back(c);
      if (next == g.width) more.erase(g.root);
      EXPECT_GT(EstimateCost(*a, more).macs, *target.max_macs) << name << " " << g.name;
    }
  }
}

TEST(Planner, CostAwareScoresRankByImportancePerUnitOfTheBoundedResource) {
  // With every channel equally important, the cost-aware ranking puts the channels that save the
  // most of the bounded resource first in line for removal: scaled scores fall as savings grow.
  for (const char* name : {"convbn_traced", "mlp_scripted", "resnet_scripted"}) {
    auto m = LoadEvalModule(Bytes(name), name);
    ASSERT_TRUE(m.ok());
    auto a = Analyze(*m, {1, 1, 28, 28});
    ASSERT_TRUE(a.ok());
    GroupScores uniform;
    for (const auto& g : a->groups) uniform[g.root] = std::vector<double>(g.width, 1.0);
    const Cost base = EstimateCost(*a, {});
    Budget target;
    target.max_param_bytes = base.param_bytes / 4;
    GroupScores scaled = CostAwareScores(*a, uniform, target);
    std::vector<std::pair<int64_t, double>> saved_and_score;  // bytes saved by one channel, score
    for (const auto& g : a->groups) {
      if (g.width < 2) continue;
      std::vector<int64_t> keep;
      for (int64_t c = 0; c + 1 < g.width; ++c) keep.push_back(c);
      int64_t saved = base.param_bytes - EstimateCost(*a, KeepPlan{{g.root, keep}}).param_bytes;
      ASSERT_GT(saved, 0) << name << " " << g.name;
      saved_and_score.push_back({saved, scaled.at(g.root)[0]});
      for (double v : scaled.at(g.root)) EXPECT_DOUBLE_EQ(v, scaled.at(g.root)[0]);
    }
    ASSERT_GE(saved_and_score.size(), 2u) << name;
    for (const auto& [saved_x, score_x] : saved_and_score) {
      for (const auto& [saved_y, score_y] : saved_and_score) {
        // score ∝ 1 / saving, so score_x · saved_x is the same for every group.
        EXPECT_NEAR(score_x * double(saved_x), score_y * double(saved_y),
                    1e-9 * score_x * double(saved_x))
            << name;
      }
    }
    // The plan from the scaled scores still meets the bound.
    PlanOptions options;
    options.cost_aware = true;
    Planner planner(*a, scaled, {}, options);
    Cost reached;
    auto plan = planner.ForBudget(target, &reached);
    ASSERT_TRUE(plan.ok()) << name << ": " << plan.error().ToString();
    EXPECT_LE(reached.param_bytes, *target.max_param_bytes) << name;
  }
}

TEST(Prune, CostAwareRankingAndAugmentedFineTuningMeetTheBudget) {
  PruneOptions o = Quick();
  o.plan.cost_aware = true;
  o.plan.min_keep_ratio = 0.1;  // 20,000 bytes is below what the default 25 % floor reaches
  o.budget.max_param_bytes = 20000;
  o.final_tune.shift_pixels = 2;
  o.final_tune.horizontal_flip = true;
  o.final_tune.steps = 8;
  auto r = Prune(Bytes("convbn_scripted"), &Synthetic(), o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_LE(r->cost.param_bytes, 20000);
  EXPECT_GE(r->finetune_steps, 8);
  auto variant = LoadBytes(r->variant);
  auto out = variant.forward({torch::zeros({1, 1, 28, 28})}).toTensor();
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{1, 10}));
}

TEST(Prune, SameInputsGiveTheSameVariant) {
  // Fine-tuning that finishes its steps inside its time limit does not depend on timing: the
  // learning-rate schedule only looks at the clock when the limit is about to cut the run.
  PruneOptions o = Quick();
  o.criterion = Criterion::kTaylor;
  auto mc = ModelCost(Bytes("resnet_scripted"), {1, 28, 28});
  ASSERT_TRUE(mc.ok());
  o.budget.max_macs = mc->macs / 2;
  o.final_tune.steps = 20;
  auto a = Prune(Bytes("resnet_scripted"), &Synthetic(), o);
  auto b = Prune(Bytes("resnet_scripted"), &Synthetic(), o);
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  torch::manual_seed(3);
  at::Tensor x = torch::randn({4, 1, 28, 28});
  at::Tensor ya = LoadBytes(a->variant).forward({x}).toTensor();
  at::Tensor yb = LoadBytes(b->variant).forward({x}).toTensor();
  EXPECT_TRUE(torch::equal(ya, yb)) << (ya - yb).abs().max().item<double>();
}

TEST(ParseBound, RelativeAndAbsoluteForms) {
  EXPECT_DOUBLE_EQ(*ParseBound("--max-macs", "0.25x", 1000.0), 250.0);
  EXPECT_DOUBLE_EQ(*ParseBound("--max-macs", "2M", 1.0), 2e6);
  EXPECT_DOUBLE_EQ(*ParseBound("--max-macs", "200k", 1.0), 2e5);
  EXPECT_DOUBLE_EQ(*ParseBound("--max-macs", "12345", 1.0), 12345.0);
  for (const char* bad : {"", "0", "-3", "0x", "abc", "1.5q", "nanx"}) {
    auto r = ParseBound("--max-macs", bad, 1000.0);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("--max-macs"), std::string::npos);
  }
}

}  // namespace
}  // namespace edgeprune::pruning
