// The server's build facade (server/model_worker/variant_build.hpp) on a real fixture and real
// Fashion-MNIST: a build hands out a checkpoint once the model is pruned, and a retried build
// given that checkpoint skips analysis and pruning and yields the same variant shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "server/pruning/fixtures.hpp"
#include "server/models/cost_model.hpp"
#include "server/models/torchscript.hpp"
#include "server/pruning/analysis.hpp"
#include "server/pruning/eval_graph.hpp"
#include "server/pruning/importance.hpp"
#include "server/pruning/planner.hpp"
#include "server/model_worker/variant_build.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::pruning {
namespace {

// Builds go through the model worker's adapter over Prune(), as the server runs them.
using catalog::VariantBuildOptions;
using model_worker::MakeVariantBuilder;

// What the server's upload check records about a model (its parameters, buffers included);
// the check itself now runs in the model worker.
struct Facts {
  std::int64_t parameters = 0;
};
Result<Facts> ModelFacts(const std::string& path) {
  EP_ASSIGN_OR_RETURN(torch::jit::Module m, models::LoadModule(path));
  EP_ASSIGN_OR_RETURN(models::CostReport c, models::EstimateCost(m, {1, 28, 28}));
  return Facts{(c.param_bytes + c.buffer_bytes) / 4};
}

struct BuildRun {
  Result<catalog::BuildOutcome> outcome;
  std::vector<std::string> phases;
  std::string checkpoint;
};

class VariantBuildTest : public ::testing::Test {
 protected:
  VariantBuildOptions Options() const {
    VariantBuildOptions o;
    o.train_limit = 600;
    o.test_limit = 200;
    o.finetune_steps = 4;
    o.step_finetune_steps = 2;
    o.finetune_seconds = 60;
    o.batch_size = 32;
    return o;
  }

  BuildRun Build(const std::string& out, std::optional<std::string> resume,
                 std::optional<std::int64_t> max_param_bytes = std::nullopt) {
    auto facts = ModelFacts(master_);
    EXPECT_TRUE(facts.ok()) << facts.error().ToString();
    BuildRun run{MakeError(ErrorKind::kInternal, "not_run", ""), {}, {}};
    catalog::BuildRequest r;
    r.master_path = master_;
    r.input_shape = {1, 1, 28, 28};
    r.num_classes = 10;
    r.dataset = "fashion-mnist";
    r.budget.max_param_bytes = facts.ok() ? facts->parameters * 4 / 2 : 1;
    if (max_param_bytes) r.budget.max_param_bytes = *max_param_bytes;
    r.work_dir = dir_.Subdir("work");
    r.output_path = dir_.File(out);
    r.progress = [&run](std::string_view phase, double) {
      run.phases.emplace_back(phase);
      return Ok();
    };
    r.checkpoint = [&run](std::string_view bytes) {
      run.checkpoint = std::string(bytes);
      return Ok();
    };
    r.resume = std::move(resume);
    run.outcome = MakeVariantBuilder(Options())(r);
    return run;
  }

  static bool Has(const BuildRun& run, const std::string& phase) {
    return std::find(run.phases.begin(), run.phases.end(), phase) != run.phases.end();
  }

  edgeprune::testing::TempDir dir_{"edgeprune-variant-build"};
  std::string master_ = fixtures::FixturePath("convbn_scripted");
};

TEST_F(VariantBuildTest, ARetriedBuildResumesFromThePrunedCheckpoint) {
  BuildRun first = Build("first.pt", std::nullopt);
  ASSERT_TRUE(first.outcome.ok()) << first.outcome.error().ToString();
  EXPECT_TRUE(Has(first, "analyze"));
  EXPECT_TRUE(Has(first, "prune"));
  ASSERT_FALSE(first.checkpoint.empty());
  EXPECT_EQ(first.checkpoint.rfind("edgeprune-build-checkpoint/1 ", 0), 0u);

  BuildRun resumed = Build("resumed.pt", first.checkpoint);
  ASSERT_TRUE(resumed.outcome.ok()) << resumed.outcome.error().ToString();
  EXPECT_FALSE(Has(resumed, "analyze"));
  EXPECT_FALSE(Has(resumed, "prune"));
  EXPECT_TRUE(Has(resumed, "finetune"));
  EXPECT_TRUE(resumed.checkpoint.empty()) << "nothing new to checkpoint";
  EXPECT_EQ(resumed.outcome->parameters, first.outcome->parameters);
  EXPECT_EQ(resumed.outcome->macs, first.outcome->macs);

  // The resumed variant is a loadable model of the pruned size.
  auto facts = ModelFacts(dir_.File("resumed.pt"));
  ASSERT_TRUE(facts.ok()) << facts.error().ToString();
  auto master = ModelFacts(master_);
  ASSERT_TRUE(master.ok());
  EXPECT_LT(facts->parameters, master->parameters);
}

TEST_F(VariantBuildTest, AnUnrecognisedCheckpointMeansAFullBuild) {
  for (const std::string& bad : {std::string("garbage"),
                                std::string("edgeprune-build-checkpoint/1 1 4 1 1\nnot a model"),
                                std::string("edgeprune-build-checkpoint/1 -5 x\n")}) {
    BuildRun run = Build("full.pt", bad);
    ASSERT_TRUE(run.outcome.ok()) << run.outcome.error().ToString();
    EXPECT_TRUE(Has(run, "analyze")) << bad;
    EXPECT_FALSE(run.checkpoint.empty()) << bad;
  }
}

// Smallest parameter bytes the planner reaches on the fixture with a given per-layer floor.
int64_t SmallestParamBytes(const std::string& path, double floor) {
  auto bytes = ReadModelBytes(path);
  EXPECT_TRUE(bytes.ok());
  auto m = LoadEvalModule(*bytes, "fixture");
  EXPECT_TRUE(m.ok());
  auto a = Analyze(*m, {1, 1, 28, 28});
  EXPECT_TRUE(a.ok());
  auto scores = ScoreChannels(*m, *a, Criterion::kL1);
  EXPECT_TRUE(scores.ok());
  PlanOptions options;
  options.min_keep_ratio = floor;
  Budget impossible;
  impossible.max_param_bytes = 1;
  Cost reached;
  EXPECT_FALSE(Planner(*a, *scores, {}, options).ForBudget(impossible, &reached).ok());
  return reached.param_bytes;
}

TEST_F(VariantBuildTest, ABudgetBelowTheDefaultFloorStillGetsAThinnerVariant) {
  const int64_t at_default = SmallestParamBytes(master_, PlanOptions{}.min_keep_ratio);
  const int64_t at_lowest = SmallestParamBytes(master_, kLowestKeepRatio);
  ASSERT_LT(at_lowest, at_default);
  const int64_t budget = (at_lowest + at_default) / 2;
  BuildRun run = Build("thin.pt", std::nullopt, budget);
  ASSERT_TRUE(run.outcome.ok()) << run.outcome.error().ToString();
  EXPECT_LE(run.outcome->parameters * 4, budget);

  // Below even the lowest floor the build fails and names the reason.
  BuildRun none = Build("none.pt", std::nullopt, at_lowest / 2);
  ASSERT_FALSE(none.outcome.ok());
  EXPECT_EQ(none.outcome.error().code, "budget_unreachable");
}

}  // namespace
}  // namespace edgeprune::pruning
