#include <gtest/gtest.h>

#include "agent/runtime/microbench.hpp"

namespace edgeprune::agent {
namespace {

TEST(Microbench, MeasuresEveryFigureWithinTheAcceptedRanges) {
  auto bench = RunMicrobench({.threads = 1, .total_ms = 120});
  ASSERT_TRUE(bench.ok()) << bench.error().ToString();
  EXPECT_GT(bench->matmul_gflops, 0.0);
  EXPECT_LT(bench->matmul_gflops, wire::kMaxGflops);
  EXPECT_GT(bench->conv_gmacs_per_s, 0.0);
  EXPECT_GT(bench->conv_overhead_ms, 0.0);
  EXPECT_GT(bench->mem_bandwidth_gbps, 0.0);
  EXPECT_EQ(bench->threads, 1);
  // What the agent measures must pass the server's validation.
  auto round = wire::MicrobenchFromJson(wire::ToJson(*bench));
  EXPECT_TRUE(round.ok()) << round.error().ToString();
}

TEST(Microbench, ReportsTheLinkedTorchVersion) {
  EXPECT_EQ(TorchVersion().rfind("1.", 0), 0u) << TorchVersion();
}

}  // namespace
}  // namespace edgeprune::agent
