// The LibTorch microbenchmarks as the agent runs them: `edgeprune-agent microbench --json` in a
// child process (so the daemon never maps LibTorch), parsed back into a profile's figures.
#include <gtest/gtest.h>

#include "support/build_paths.hpp"
#include "agent/profile/measure.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

MeasureOptions ChildOptions() {
  MeasureOptions o;
  o.bench_threads = 1;
  o.bench_ms = 120;
  o.agent_bin = edgeprune::testing::AgentBin();
  o.backend_path = edgeprune::testing::AgentTorchModule();
  return o;
}

TEST(Microbench, ChildMeasuresEveryFigureWithinTheAcceptedRanges) {
  auto report = RunMicrobenchChild(ChildOptions());
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  const auto& bench = report->bench;
  EXPECT_GT(bench.matmul_gflops, 0.0);
  EXPECT_LT(bench.matmul_gflops, wire::kMaxGflops);
  EXPECT_GT(bench.conv_gmacs_per_s, 0.0);
  EXPECT_GT(bench.conv_overhead_ms, 0.0);
  EXPECT_GT(bench.mem_bandwidth_gbps, 0.0);
  EXPECT_EQ(bench.threads, 1);
  EXPECT_EQ(report->torch_version.rfind("1.", 0), 0u) << report->torch_version;
  // What the agent measures must pass the server's validation.
  auto round = wire::MicrobenchFromJson(wire::ToJson(bench));
  EXPECT_TRUE(round.ok()) << round.error().ToString();
}

TEST(Microbench, DefaultModuleIsFoundNextToTheAgentBinary) {
  auto o = ChildOptions();
  o.backend_path.clear();
  auto report = RunMicrobenchChild(o);
  ASSERT_TRUE(report.ok()) << report.error().ToString();
  EXPECT_FALSE(report->torch_version.empty());
}

TEST(Microbench, MissingModuleFailsNamingTheChildAndTheModule) {
  edgeprune::testing::TempDir dir("microbench");
  auto o = ChildOptions();
  o.backend_path = dir.File("nothing-here.so");
  auto report = RunMicrobenchChild(o);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, "microbench_failed");
  const auto& m = report.error().message;
  EXPECT_NE(m.find("microbench exited with status 1"), std::string::npos) << m;
  EXPECT_NE(m.find("runtime_unavailable"), std::string::npos) << m;
  EXPECT_NE(m.find(o.backend_path), std::string::npos) << m;
}

TEST(Microbench, ChildThatCannotStartIsNamed) {
  auto o = ChildOptions();
  o.agent_bin = "/nonexistent/edgeprune-agent";
  auto report = RunMicrobenchChild(o);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, "microbench_failed");
  EXPECT_NE(report.error().message.find("/nonexistent/edgeprune-agent"), std::string::npos)
      << report.error().message;
}

TEST(Microbench, ReportRoundTripsAndRejectsGarbage) {
  MicrobenchReport r;
  r.torch_version = "1.13.1";
  r.bench.matmul_gflops = 10;
  r.bench.conv_gmacs_per_s = 2;
  r.bench.conv_overhead_ms = 0.01;
  r.bench.mem_bandwidth_gbps = 5;
  auto back = MicrobenchReportFromJson(json::Serialize(ToJson(r)));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(back->torch_version, "1.13.1");
  EXPECT_DOUBLE_EQ(back->bench.matmul_gflops, 10);
  EXPECT_FALSE(MicrobenchReportFromJson("not json").ok());
  EXPECT_FALSE(MicrobenchReportFromJson("{\"torch_version\": \"1\"}").ok());
}

}  // namespace
}  // namespace edgeprune::agent
