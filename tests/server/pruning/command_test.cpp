// The `edgeprune-server prune` command as a real process on a fixture and a synthetic data set.

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/build_paths.hpp"
#include "edgeprune/common/json.hpp"
#include "server/pruning/fixtures.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::pruning {
namespace {

int RunServer(const std::string& args, const std::string& log) {
  std::string cmd = edgeprune::testing::ServerBin() + " " + args + " >" + log + " 2>&1";
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const char* kData = " --dataset synthetic:1x28x28:10 --train-limit 256 --test-limit 64";

TEST(PruneCommand, WritesVariantAndJsonReport) {
  testing::TempDir dir;
  std::string out = dir.File("v.pt"), report = dir.File("r.json"), log = dir.File("log");
  int rc = RunServer("prune --master " + fixtures::FixturePath("convbn_traced") + kData +
                         " --max-macs 0.5x --max-param-bytes 0.6x --importance l1"
                         " --finetune-steps 5 --step-finetune-steps 2 --no-latency --out " +
                         out + " --json " + report,
                     log);
  ASSERT_EQ(rc, 0) << Slurp(log);
  EXPECT_TRUE(std::filesystem::exists(out));
  auto json = json::ParseObject(Slurp(report));
  ASSERT_TRUE(json.ok()) << json.error().ToString();
  auto bounds = json->at("bounds").as_array();
  ASSERT_EQ(bounds.size(), 2u);
  for (const auto& b : bounds) EXPECT_TRUE(b.as_object().at("ok").as_bool());
  EXPECT_NE(Slurp(log).find("kept channels"), std::string::npos);
}

TEST(PruneCommand, ResidualNetWithoutBiasesIsRecalibratedFoldedAndTimedAlike) {
  // resnet_scripted: every convolution has bias=None (an Optional[Tensor] attribute holding
  // None). Master and variant are both frozen for timing, so the speed-up is pruning's alone.
  testing::TempDir dir;
  std::string out = dir.File("v.pt"), report = dir.File("r.json"), log = dir.File("log");
  int rc = RunServer("prune --master " + fixtures::FixturePath("resnet_scripted") + kData +
                         " --max-macs 0.25x --importance taylor --finetune-steps 3"
                         " --step-finetune-steps 1 --latency-prep frozen --out " + out +
                         " --json " + report,
                     log);
  ASSERT_EQ(rc, 0) << Slurp(log);
  auto json = json::ParseObject(Slurp(report));
  ASSERT_TRUE(json.ok()) << json.error().ToString();
  EXPECT_EQ(json->at("folded_batch_norms").as_int64(), 7);
  EXPECT_GE(json->at("batch_norm_recalibrations").as_int64(), 1);
  EXPECT_NE(std::string(json->at("latency_method").as_string()).find("freeze"), std::string::npos);
  EXPECT_GT(json->at("variant").as_object().at("latency_p50_ms").as_double(), 0.0);
  EXPECT_GT(json->at("master").as_object().at("latency_p50_ms").as_double(), 0.0);
  EXPECT_TRUE(json->at("bounds").as_array().at(0).as_object().at("ok").as_bool());

  // An unknown preparation is refused before any work, and nothing is written.
  std::string other = dir.File("w.pt");
  EXPECT_EQ(RunServer("prune --master " + fixtures::FixturePath("resnet_scripted") + kData +
                          " --max-macs 0.5x --latency-prep warp --out " + other,
                      log),
            1);
  EXPECT_NE(Slurp(log).find("--latency-prep"), std::string::npos) << Slurp(log);
  EXPECT_FALSE(std::filesystem::exists(other));
}

TEST(PruneCommand, BadInputFailsWithReasonAndWritesNothing) {
  testing::TempDir dir;
  std::string out = dir.File("v.pt"), log = dir.File("log");
  std::string master = " --master " + fixtures::FixturePath("mlp_scripted");
  // Zero and negative budgets.
  EXPECT_EQ(RunServer("prune" + master + kData + " --max-macs 0 --out " + out, log), 1);
  EXPECT_NE(Slurp(log).find("must be positive"), std::string::npos) << Slurp(log);
  EXPECT_EQ(RunServer("prune" + master + kData + " --max-param-bytes -2x --out " + out, log), 1);
  // Below what the architecture can reach.
  EXPECT_EQ(RunServer("prune" + master + kData + " --max-macs 10 --out " + out, log), 1);
  EXPECT_NE(Slurp(log).find("budget_unreachable"), std::string::npos) << Slurp(log);
  // Not TorchScript.
  std::string junk = dir.WriteFile("junk.pt", "not a model");
  EXPECT_EQ(RunServer("prune --master " + junk + kData + " --max-macs 0.5x --out " + out, log), 1);
  EXPECT_NE(Slurp(log).find("not_torchscript"), std::string::npos) << Slurp(log);
  // A data set that does not match the model.
  EXPECT_EQ(RunServer("prune" + master + " --dataset synthetic:3x32x32:10 --train-limit 64"
                      " --test-limit 16 --max-macs 0.5x --out " + out, log),
            1);
  EXPECT_NE(Slurp(log).find("input"), std::string::npos) << Slurp(log);
  // Missing required flag.
  EXPECT_EQ(RunServer("prune" + master, log), 2);
  // Fine-tuning and ranking flags out of range: a usage error naming the flag.
  for (const std::string& bad : {std::string(" --traffic-weight -1"), std::string(" --warmup 0.9"),
                                 std::string(" --augment-shift 99"), std::string(" --batch-size 0"),
                                 std::string(" --kd-temperature 0")}) {
    EXPECT_EQ(RunServer("prune" + master + kData + " --max-macs 0.5x --out " + out + bad, log), 2)
        << bad;
    std::string flag = bad.substr(1, bad.find(' ', 1) - 1);
    EXPECT_NE(Slurp(log).find(flag), std::string::npos) << bad << ": " << Slurp(log);
  }
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  }
}

}  // namespace
}  // namespace edgeprune::pruning
