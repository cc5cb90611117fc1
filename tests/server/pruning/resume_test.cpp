// Prune()'s hooks for the server's jobs, on a real fixture and a synthetic data set: a checkpoint
// after every pruning step from which a later run resumes to the same variant, progress that only
// moves forward and whose error stops the run, and a master that already fits left untouched.

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "server/pruning/fixtures.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/pipeline.hpp"

namespace edgeprune::pruning {
namespace {

std::string Bytes(const std::string& name) { return fixtures::FixtureBytes(name); }

const models::DatasetSplits& Synthetic() {
  static const models::DatasetSplits data = [] {
    auto d = fixtures::SmallSyntheticData(28, 256, 64, 32);
    EXPECT_TRUE(d.ok()) << d.error().ToString();
    return *d;
  }();
  return data;
}

// Taylor scores, fine-tuning between steps and at the end: the server's recipe, shortened.
PruneOptions Recipe(const std::string& master) {
  PruneOptions o;
  o.input_shape = {1, 28, 28};
  o.criterion = Criterion::kTaylor;
  o.calibration_batches = 2;
  o.between_steps.steps = 3;
  o.between_steps.batch_size = 32;
  o.final_tune.steps = 4;
  o.final_tune.batch_size = 32;
  auto cost = ModelCost(master, o.input_shape);
  EXPECT_TRUE(cost.ok());
  o.budget.max_macs = cost.ok() ? cost->macs / 6 : 1;  // three steps of at most 2x
  return o;
}

at::Tensor Logits(const std::string& bytes) {
  std::istringstream in(bytes);
  auto m = torch::jit::load(in);
  m.eval();
  torch::manual_seed(7);
  return m.forward({torch::randn({4, 1, 28, 28})}).toTensor();
}

TEST(PruneResume, EveryStepIsCheckpointedAndAResumedRunEndsWithTheSameVariant) {
  const std::string master = Bytes("convbn_scripted");
  PruneOptions o = Recipe(master);
  std::vector<PruneCheckpoint> checkpoints;
  o.on_step = [&](const PruneCheckpoint& cp) {
    checkpoints.push_back(cp);
    return Ok();
  };
  auto full = Prune(master, &Synthetic(), o);
  ASSERT_TRUE(full.ok()) << full.error().ToString();
  ASSERT_GE(full->steps, 2);
  ASSERT_EQ(checkpoints.size(), static_cast<size_t>(full->steps));
  for (size_t i = 0; i < checkpoints.size(); ++i) {
    EXPECT_EQ(checkpoints[i].step, static_cast<int>(i) + 1);
  }

  // A run interrupted after its first step resumes from there: it takes only the remaining
  // steps, checkpoints them under their own numbers and ends with the uninterrupted variant.
  PruneOptions again = Recipe(master);
  again.resume = checkpoints.front();
  std::vector<int> resumed_steps;
  again.on_step = [&](const PruneCheckpoint& cp) {
    resumed_steps.push_back(cp.step);
    return Ok();
  };
  auto resumed = Prune(master, &Synthetic(), again);
  ASSERT_TRUE(resumed.ok()) << resumed.error().ToString();
  EXPECT_EQ(resumed->steps, full->steps);
  ASSERT_EQ(resumed_steps.size(), checkpoints.size() - 1);
  EXPECT_EQ(resumed_steps.front(), 2);
  EXPECT_EQ(resumed->cost.macs, full->cost.macs);
  EXPECT_EQ(resumed->cost.param_bytes, full->cost.param_bytes);
  EXPECT_TRUE(torch::allclose(Logits(resumed->variant), Logits(full->variant), 1e-5, 1e-6));
}

TEST(PruneResume, ProgressMovesForwardThroughStepsAndFineTuningAndItsErrorStopsTheRun) {
  const std::string master = Bytes("convbn_traced");
  PruneOptions o = Recipe(master);
  o.final_tune.steps = 6;
  o.final_tune.report_every = 2;
  std::vector<std::pair<std::string, double>> seen;
  o.on_progress = [&](std::string_view phase, double fraction) {
    seen.emplace_back(std::string(phase), fraction);
    return Ok();
  };
  auto r = Prune(master, &Synthetic(), o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front().first, "prune");
  EXPECT_EQ(seen.back().first, "finetune");
  int prune_reports = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_GE(seen[i].second, 0.0);
    EXPECT_LT(seen[i].second, 1.0);
    if (i > 0) {
      EXPECT_GE(seen[i].second, seen[i - 1].second) << i;
    }
    if (seen[i].first == "prune") ++prune_reports;
  }
  EXPECT_GE(prune_reports, r->steps);
  EXPECT_EQ(r->finetune_steps, r->planned_finetune_steps);
  EXPECT_FALSE(r->time_limited);

  // A cancelled job: the callback's error comes back, inside the final fine-tuning too.
  for (const char* stop_in : {"prune", "finetune"}) {
    PruneOptions c = Recipe(master);
    c.final_tune.report_every = 1;
    c.on_progress = [&](std::string_view phase, double) -> Status {
      if (phase == stop_in) return MakeError(ErrorKind::kUnavailable, "cancelled", "stop");
      return Ok();
    };
    auto stopped = Prune(master, &Synthetic(), c);
    ASSERT_FALSE(stopped.ok()) << stop_in;
    EXPECT_EQ(stopped.error().code, "cancelled") << stop_in;
  }
}

TEST(PruneResume, AMasterThatAlreadyFitsIsEmittedWithoutPruningOrFineTuning) {
  const std::string master = Bytes("convbn_scripted");
  PruneOptions o = Recipe(master);
  auto cost = ModelCost(master, o.input_shape);
  ASSERT_TRUE(cost.ok());
  o.budget.max_macs = cost->macs;
  int steps_seen = 0;
  o.on_step = [&](const PruneCheckpoint&) {
    ++steps_seen;
    return Ok();
  };
  auto r = Prune(master, &Synthetic(), o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->steps, 0);
  EXPECT_EQ(steps_seen, 0);
  EXPECT_EQ(r->finetune_steps, 0);
  EXPECT_EQ(r->cost.macs, cost->macs);
  EXPECT_TRUE(torch::allclose(Logits(r->variant), Logits(master), 1e-4, 1e-5));
}

TEST(PruneResume, AFineTuningCutByItsTimeLimitIsReported) {
  const std::string master = Bytes("convbn_traced");
  PruneOptions o = Recipe(master);
  o.final_tune.steps = 1'000'000;
  o.final_tune.seconds = 0.0;  // stops before its first step, whatever the machine's load
  auto r = Prune(master, &Synthetic(), o);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_TRUE(r->time_limited);
  EXPECT_LT(r->finetune_steps, r->planned_finetune_steps);
}

}  // namespace
}  // namespace edgeprune::pruning
