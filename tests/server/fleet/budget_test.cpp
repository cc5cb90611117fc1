#include <gtest/gtest.h>

#include "server/fleet/budget.hpp"

namespace edgeprune::fleet {
namespace {

wire::DeviceProfile Profile() {
  wire::DeviceProfile p;
  p.cores = 4;
  p.ram_total_bytes = 8LL << 30;
  p.ram_available_bytes = 4LL << 30;  // 4 GiB
  p.disk_free_bytes = 100LL << 30;
  p.bench.conv_gmacs_per_s = 10.0;  // 1e7 MAC/ms
  p.bench.conv_overhead_ms = 1.0;
  return p;
}

TEST(BudgetFor, FollowsTheDocumentedFormula) {
  auto b = BudgetFor(Profile(), {});
  ASSERT_TRUE(b.ok()) << b.error().ToString();
  const std::int64_t reserve = (4LL << 30) / 4;  // 25 % of available RAM
  EXPECT_EQ(*b->max_param_bytes, reserve / 2);
  EXPECT_EQ(*b->max_activation_bytes, reserve / 4);
  EXPECT_DOUBLE_EQ(*b->max_latency_ms, 100.0);
  // (100 ms − 1 ms overhead) × 1e7 MAC/ms × 0.7
  EXPECT_NEAR(static_cast<double>(*b->max_macs), 99.0 * 1e7 * 0.7, 1.0);
  ASSERT_TRUE(b->latency_model);
  EXPECT_NEAR(b->latency_model->PredictMs(static_cast<double>(*b->max_macs)), 100.0, 1e-6);
}

TEST(BudgetFor, CapsLowerTheBudgetAndTheTighterCapWins) {
  auto p = Profile();
  p.caps.latency_slo_ms = 20.0;               // agent declares 20 ms
  p.caps.memory_reserve_bytes = 64LL << 20;   // and 64 MiB
  wire::DeviceCaps op;
  op.latency_slo_ms = 50.0;                   // operator's looser SLO loses
  op.max_model_bytes = 8LL << 20;             // operator's model-size cap wins
  auto b = BudgetFor(p, op);
  ASSERT_TRUE(b.ok());
  EXPECT_DOUBLE_EQ(*b->max_latency_ms, 20.0);
  EXPECT_NEAR(static_cast<double>(*b->max_macs), 19.0 * 1e7 * 0.7, 1.0);
  EXPECT_EQ(*b->max_param_bytes, 8LL << 20);
  EXPECT_EQ(*b->max_activation_bytes, (64LL << 20) / 4);
}

TEST(BudgetFor, MemoryCapCannotExceedAvailableRamAndDiskLimitsModelSize) {
  auto p = Profile();
  p.disk_free_bytes = 10LL << 20;  // 10 MiB free: a variant may take 1 MiB
  wire::DeviceCaps op;
  op.memory_reserve_bytes = 1LL << 40;  // more than the device has
  auto b = BudgetFor(p, op);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b->max_activation_bytes, (4LL << 30) / 4);
  EXPECT_EQ(*b->max_param_bytes, (10LL << 20) / 10);
}

TEST(BudgetFor, SloBelowOverheadGivesZeroMacs) {
  auto p = Profile();
  p.caps.latency_slo_ms = 0.5;
  auto b = BudgetFor(p, {});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b->max_macs, 0);
}

TEST(BudgetFor, RejectsAnInvalidPolicy) {
  BudgetPolicy policy;
  policy.param_share = 0.9;
  policy.activation_share = 0.5;
  auto b = BudgetFor(Profile(), {}, policy);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, "invalid_budget_policy");
}

}  // namespace
}  // namespace edgeprune::fleet
