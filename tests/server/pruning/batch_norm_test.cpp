// Batch-norm re-estimation and folding on the Python-made fixtures (scripted and traced), and the
// server's torch-free variant builder (the job workers' path) on every fixture, including convolutions
// without bias.

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <functional>
#include <sstream>

#include "server/pruning/fixtures.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/batch_norm.hpp"
#include "server/pruning/cost.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/finetune.hpp"
#include "server/pruning/pipeline.hpp"
#include "server/pruning/sparsity.hpp"
#include "server/model_worker/variant_build.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::pruning {
namespace {

// Builds go through the model worker's adapter over Prune(), as the server runs them.
using catalog::VariantBuildOptions;
using model_worker::MakeVariantBuilder;

const std::vector<int64_t> kInput = {1, 1, 28, 28};

EvalModule LoadFixture(const std::string& name) {
  auto bytes = ReadModelBytes(fixtures::FixturePath(name));
  EXPECT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto m = LoadEvalModule(*bytes, name);
  EXPECT_TRUE(m.ok()) << m.error().ToString();
  return std::move(*m);
}

int CountNodes(const EvalModule& m, const char* kind) {
  int n = 0;
  std::function<void(const torch::jit::Block*)> walk = [&](const torch::jit::Block* b) {
    for (const auto* node : b->nodes()) {
      if (std::string(node->kind().toQualString()) == kind) ++n;
      for (const auto* inner : node->blocks()) walk(inner);
    }
  };
  walk(m.graph->block());
  return n;
}

at::Tensor Images(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn({n, 1, 28, 28}, gen);
}

// Batch norms each fixture has, and how many sit right after a convolution used by nothing else.
struct BnCounts {
  int total;
  int foldable;
};

BnCounts ExpectedBatchNorms(const std::string& fixture) {
  if (fixture.rfind("convbn", 0) == 0) return {2, 2};
  if (fixture.rfind("resnet", 0) == 0) return {7, 7};
  if (fixture.rfind("depthwise", 0) == 0) return {5, 5};
  if (fixture.rfind("cat", 0) == 0) return {1, 0};  // after a cat, not a convolution
  return {0, 0};
}

class EveryFixtureBn : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryFixtureBn, FoldingRemovesBatchNormsAndKeepsOutputs) {
  // Folding rewrites the graph, so it runs on a module whose forward has not run yet (a method
  // keeps the graph it first ran); the reference outputs come from a second copy.
  EvalModule m = LoadFixture(GetParam());
  EvalModule reference = LoadFixture(GetParam());
  BnCounts expected = ExpectedBatchNorms(GetParam());
  ASSERT_EQ(CountNodes(m, "aten::batch_norm"), expected.total);
  auto before = Analyze(m, kInput);
  ASSERT_TRUE(before.ok()) << before.error().ToString();
  at::Tensor x = Images(4, 7);
  auto ref = RunForward(reference.module, x, "fixture");
  ASSERT_TRUE(ref.ok());

  auto folded = FoldBatchNorm(m, kInput);
  ASSERT_TRUE(folded.ok()) << folded.error().ToString();
  EXPECT_EQ(*folded, expected.foldable);
  EXPECT_EQ(CountNodes(m, "aten::batch_norm"), expected.total - expected.foldable);
  auto out = RunForward(m.module, x, "folded");
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_LT((*out - *ref).abs().max().item<double>(), 1e-4);

  // Saved and loaded again (as the agent does), it gives the same outputs, and the pruning
  // analysis still understands it at the same cost.
  auto bytes = SaveModuleBytes(m.module);
  ASSERT_TRUE(bytes.ok());
  std::istringstream in(*bytes);
  auto again = torch::jit::load(in);
  again.eval();
  auto reloaded = RunForward(again, x, "reloaded");
  ASSERT_TRUE(reloaded.ok());
  EXPECT_LT((*reloaded - *out).abs().max().item<double>(), 1e-6);
  auto prepared = LoadEvalModule(*bytes, "folded");
  ASSERT_TRUE(prepared.ok());
  auto after = Analyze(*prepared, kInput);
  ASSERT_TRUE(after.ok()) << after.error().ToString();
  Cost c0 = EstimateCost(*before, {}), c1 = EstimateCost(*after, {});
  EXPECT_EQ(c1.macs, c0.macs);
  EXPECT_EQ(c1.param_bytes, c0.param_bytes);
  EXPECT_EQ(after->groups.size(), before->groups.size());
}

TEST_P(EveryFixtureBn, RecalibrationChangesOnlyRunningStatistics) {
  EvalModule m = LoadFixture(GetParam());
  std::map<std::string, at::Tensor> params_before;
  for (const auto& p : m.module.named_parameters(true)) params_before[p.name] = p.value.clone();
  auto n = RecalibrateBatchNorm(m, Images(96, 3), 32, 3);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  EXPECT_EQ(*n, ExpectedBatchNorms(GetParam()).total);
  for (const auto& p : m.module.named_parameters(true)) {
    EXPECT_TRUE(p.value.equal(params_before.at(p.name))) << p.name;
  }
  // Still an evaluation-mode model: the same input gives the same output twice.
  at::Tensor x = Images(2, 9);
  auto a = RunForward(m.module, x, "recalibrated");
  auto b = RunForward(m.module, x, "recalibrated");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->equal(*b));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EveryFixtureBn, ::testing::ValuesIn(fixtures::AllFixtures()));

TEST(BatchNormRecalibration, FirstLayerStatisticsAreThoseOfItsInputs) {
  // convbn: conv1 (3×3, padding 1, bias) feeds bn1, whose random statistics get replaced by the
  // average over batches of the batch mean and unbiased variance of conv1's output.
  EvalModule m = LoadFixture("convbn_traced");
  at::Tensor images = Images(96, 5);
  auto n = RecalibrateBatchNorm(m, images, 32, 3);
  ASSERT_TRUE(n.ok()) << n.error().ToString();
  ASSERT_EQ(*n, 2);
  at::Tensor w = *GetTensorAttr(m.module, "conv1.weight");
  at::Tensor bias = *GetTensorAttr(m.module, "conv1.bias");
  at::Tensor mean = torch::zeros({16}, torch::kDouble), var = torch::zeros({16}, torch::kDouble);
  for (int b = 0; b < 3; ++b) {
    at::Tensor y = at::conv2d(images.slice(0, 32 * b, 32 * (b + 1)), w, bias, {1, 1}, {1, 1})
                       .to(torch::kDouble);
    mean += y.mean({0, 2, 3});
    var += y.var({0, 2, 3}, /*unbiased=*/true);
  }
  mean /= 3.0;
  var /= 3.0;
  EXPECT_LT((GetTensorAttr(m.module, "bn1.running_mean")->to(torch::kDouble) - mean)
                .abs().max().item<double>(), 1e-4);
  EXPECT_LT((GetTensorAttr(m.module, "bn1.running_var")->to(torch::kDouble) - var)
                .abs().max().item<double>(), 1e-3);
}

TEST(BatchNormRecalibration, ImagesThatDoNotFitChangeNothing) {
  EvalModule m = LoadFixture("resnet_scripted");
  at::Tensor mean = GetTensorAttr(m.module, "stem.1.running_mean")->clone();
  at::Tensor var = GetTensorAttr(m.module, "block2.bn2.running_var")->clone();
  auto n = RecalibrateBatchNorm(m, torch::zeros({8, 3, 32, 32}), 4, 2);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, "calibration_failed");
  EXPECT_TRUE(GetTensorAttr(m.module, "stem.1.running_mean")->equal(mean));
  EXPECT_TRUE(GetTensorAttr(m.module, "block2.bn2.running_var")->equal(var));
  // No images: nothing to do.
  EXPECT_EQ(*RecalibrateBatchNorm(m, at::Tensor(), 4, 2), 0);
}

TEST(BatchNormRecalibration, RecentresTheActivationsOfARandomlyMaskedNetwork) {
  // A 50 % random mask shifts every layer's activations; the master's statistics no longer match.
  // Re-estimated statistics normalize the masked network's activations again: with the same
  // weights its batch-norm outputs have zero mean per channel on the calibration images, the
  // master's statistics leave them off-centre.
  auto bytes = ReadModelBytes(fixtures::FixturePath("convbn_scripted"));
  ASSERT_TRUE(bytes.ok());
  auto stale = LoadEvalModule(*bytes, "stale");
  auto fresh = LoadEvalModule(*bytes, "fresh");
  ASSERT_TRUE(stale.ok() && fresh.ok());
  ASSERT_TRUE(ApplyRandomSparsity(stale->module, 0.5, 1).ok());
  ASSERT_TRUE(ApplyRandomSparsity(fresh->module, 0.5, 1).ok());
  at::Tensor images = Images(128, 11);
  ASSERT_EQ(*RecalibrateBatchNorm(*fresh, images, 64, 2), 2);
  auto centre = [&](EvalModule& m) {
    torch::NoGradGuard no_grad;
    at::Tensor y = at::conv2d(images, *GetTensorAttr(m.module, "conv1.weight"),
                              *GetTensorAttr(m.module, "conv1.bias"), {1, 1}, {1, 1});
    y = at::batch_norm(y, *GetTensorAttr(m.module, "bn1.weight"),
                       *GetTensorAttr(m.module, "bn1.bias"),
                       *GetTensorAttr(m.module, "bn1.running_mean"),
                       *GetTensorAttr(m.module, "bn1.running_var"), false, 0.1, 1e-5, false);
    // Centre of each channel relative to its scale γ, averaged over channels.
    at::Tensor gamma = *GetTensorAttr(m.module, "bn1.weight");
    at::Tensor beta = *GetTensorAttr(m.module, "bn1.bias");
    return ((y.mean({0, 2, 3}) - beta) / gamma).abs().mean().item<double>();
  };
  EXPECT_LT(centre(*fresh), 1e-3);
  EXPECT_GT(centre(*stale), 0.05);
}

// Training-mode fine-tuning: batch norms normalize each batch with its own statistics and their
// running statistics follow; the evaluation-mode graph leaves them where they were.
models::Dataset OneBatch(int64_t n, uint64_t seed) {
  models::Dataset d;
  d.name = "one-batch";
  d.images = Images(n, seed);
  d.labels = torch::arange(n, torch::kLong).remainder(10);
  for (int c = 0; c < 10; ++c) d.class_names.push_back("c" + std::to_string(c));
  return d;
}

TEST(TrainingModeFinetune, RunningStatisticsBecomeThoseOfTheTrainingBatch) {
  // lr 0 and momentum 1: one step leaves the weights alone and bn1's running statistics equal
  // the batch's mean and unbiased variance of conv1's output.
  EvalModule m = LoadFixture("convbn_scripted");
  models::Dataset data = OneBatch(64, 21);
  FinetuneOptions o;
  o.steps = 1;
  o.batch_size = 64;
  o.learning_rate = 0.0;
  o.weight_decay = 0.0;
  o.train_batch_norm = true;
  o.bn_momentum = 1.0;
  at::Tensor w = GetTensorAttr(m.module, "conv1.weight")->clone();
  auto r = Finetune(m, nullptr, data, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->steps, 1);
  EXPECT_TRUE(GetTensorAttr(m.module, "conv1.weight")->equal(w));
  at::Tensor y = at::conv2d(data.images, w, *GetTensorAttr(m.module, "conv1.bias"), {1, 1},
                            {1, 1});
  EXPECT_LT((*GetTensorAttr(m.module, "bn1.running_mean") - y.mean({0, 2, 3}))
                .abs().max().item<double>(), 1e-4);
  EXPECT_LT((*GetTensorAttr(m.module, "bn1.running_var") - y.var({0, 2, 3}, true))
                .abs().max().item<double>(), 1e-3);
  // The module itself is still the evaluation-mode model.
  at::Tensor x = Images(2, 9);
  auto a = RunForward(m.module, x, "tuned");
  auto b = RunForward(m.module, x, "tuned");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->equal(*b));
}

TEST_P(EveryFixtureBn, TrainingModeFinetuneTrainsWeightsAndMovesStatistics) {
  const int bns = ExpectedBatchNorms(GetParam()).total;
  for (bool train : {false, true}) {
    EvalModule m = LoadFixture(GetParam());
    std::map<std::string, at::Tensor> before;
    for (const auto& p : m.module.named_parameters(true)) before[p.name] = p.value.clone();
    for (const auto& b : m.module.named_buffers(true)) before[b.name] = b.value.clone();
    FinetuneOptions o;
    o.steps = 3;
    o.batch_size = 16;
    o.learning_rate = 0.01;
    o.train_batch_norm = train;
    auto r = Finetune(m, nullptr, OneBatch(48, 4), o);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
    int moved_weights = 0, moved_stats = 0;
    for (const auto& p : m.module.named_parameters(true)) {
      if (!p.value.equal(before.at(p.name))) ++moved_weights;
      EXPECT_FALSE(p.value.requires_grad()) << p.name;
    }
    for (const auto& b : m.module.named_buffers(true)) {
      if (b.value.is_floating_point() && !b.value.equal(before.at(b.name))) ++moved_stats;
    }
    EXPECT_GT(moved_weights, 0) << (train ? "training mode" : "evaluation mode");
    // Each batch norm has a running mean and a running variance.
    EXPECT_EQ(moved_stats, train ? 2 * bns : 0) << (train ? "training mode" : "evaluation mode");
  }
}

TEST(PrunePipeline, RecalibratesAfterEveryChangeAndEmitsFoldedVariants) {
  auto master = ReadModelBytes(fixtures::FixturePath("resnet_scripted"));
  ASSERT_TRUE(master.ok());
  auto data = fixtures::SmallSyntheticData(28);
  ASSERT_TRUE(data.ok()) << data.error().ToString();
  auto cost = ModelCost(*master, {1, 28, 28});
  ASSERT_TRUE(cost.ok());
  PruneOptions o;
  o.input_shape = {1, 28, 28};
  o.criterion = Criterion::kL1;
  o.budget.max_macs = cost->macs / 4;
  o.between_steps.steps = 2;
  o.final_tune.steps = 3;
  o.sparsity = 0.3;
  auto r = Prune(*master, &*data, o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->recalibrations, r->steps + 1);  // after each shrink and after the mask
  EXPECT_EQ(r->folded_batch_norms, 7);
  auto variant = LoadEvalModule(r->variant, "variant");
  ASSERT_TRUE(variant.ok());
  EXPECT_EQ(CountNodes(*variant, "aten::batch_norm"), 0);
  EXPECT_LE(r->cost.macs, *o.budget.max_macs);
  EXPECT_GE(r->sparsity, 0.29);  // folding scales weights, zeros stay zeros

  // Without data nothing is re-estimated; with folding off the batch norms stay.
  o.sparsity = 0;
  o.fold_batch_norm = false;
  auto plain = Prune(*master, nullptr, o);
  ASSERT_TRUE(plain.ok()) << plain.error().ToString();
  EXPECT_EQ(plain->recalibrations, 0);
  EXPECT_EQ(plain->folded_batch_norms, 0);
  auto unfolded = LoadEvalModule(plain->variant, "variant");
  ASSERT_TRUE(unfolded.ok());
  EXPECT_EQ(CountNodes(*unfolded, "aten::batch_norm"), 7);
}

// The server's job workers build variants through this facade; every fixture must go through it,
// convolutions without bias (bias=None) included.
class EveryFixtureFacade : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryFixtureFacade, BuildsAVariantThatFitsLoadsAndRuns) {
  testing::TempDir dir;
  VariantBuildOptions options;
  options.train_limit = 256;
  options.test_limit = 64;
  options.finetune_steps = 3;
  options.step_finetune_steps = 2;
  auto build = MakeVariantBuilder(options);
  std::string master = fixtures::FixturePath(GetParam());
  auto bytes = ReadModelBytes(master);
  ASSERT_TRUE(bytes.ok());
  auto cost = ModelCost(*bytes, {1, 28, 28});
  ASSERT_TRUE(cost.ok());
  catalog::BuildRequest r;
  r.master_path = master;
  r.input_shape = kInput;
  r.num_classes = 10;
  r.dataset = "synthetic:1x28x28:10";
  r.budget.max_macs = cost->macs / 2;
  r.work_dir = dir.Subdir("work");
  r.output_path = dir.File("variant.pt");
  std::vector<std::string> phases;
  r.progress = [&](std::string_view phase, double) -> Status {
    phases.emplace_back(phase);
    return Ok();
  };
  auto outcome = build(r);
  ASSERT_TRUE(outcome.ok()) << outcome.error().ToString();
  EXPECT_LE(outcome->macs, *r.budget.max_macs);
  EXPECT_LT(outcome->macs, cost->macs);
  EXPECT_GE(outcome->accuracy, 0.0);
  ASSERT_FALSE(phases.empty());
  EXPECT_EQ(phases.back(), "done");

  auto emitted = ReadModelBytes(r.output_path);
  ASSERT_TRUE(emitted.ok());
  auto v = LoadEvalModule(*emitted, "variant");
  ASSERT_TRUE(v.ok()) << v.error().ToString();
  EXPECT_EQ(CountNodes(*v, "aten::batch_norm"),
            ExpectedBatchNorms(GetParam()).total - ExpectedBatchNorms(GetParam()).foldable);
  auto out = RunForward(v->module, Images(3, 1), "variant");
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->sizes().vec(), (std::vector<int64_t>{3, 10}));
  auto vc = ModelCost(*emitted, {1, 28, 28});
  ASSERT_TRUE(vc.ok()) << vc.error().ToString();
  EXPECT_EQ(vc->macs, outcome->macs);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EveryFixtureFacade, ::testing::ValuesIn(fixtures::AllFixtures()));

}  // namespace
}  // namespace edgeprune::pruning
