#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "server/deploy/deployments.hpp"
#include "server/deploy/ladder.hpp"
#include "server/support/variants_fixture.hpp"

namespace edgeprune::deploy {
namespace {

using testing::VariantsDb;

TEST(VariantLadderTest, LevelsAreHalfOctaves) {
  EXPECT_EQ(deploy::LevelFor(1.0), 0);
  EXPECT_EQ(deploy::LevelFor(3.0), 0);
  EXPECT_EQ(deploy::LevelFor(0.99), 1);
  EXPECT_EQ(deploy::LevelFor(deploy::LevelFraction(1)), 1);
  EXPECT_EQ(deploy::LevelFor(0.5), 2);
  EXPECT_EQ(deploy::LevelFor(0.49), 3);
  EXPECT_EQ(deploy::LevelFor(1.0 / 256), deploy::kMaxLevel);
  EXPECT_EQ(deploy::LevelFor(1.0 / 300), std::nullopt);
  EXPECT_EQ(deploy::LevelFor(0.0), std::nullopt);
  for (int k = 0; k <= deploy::kMaxLevel; ++k) {
    EXPECT_EQ(deploy::LevelFromBucket(deploy::BucketKey(k)).value(), k);
  }
  EXPECT_FALSE(deploy::LevelFromBucket("L17").ok());
  EXPECT_FALSE(deploy::LevelFromBucket("X1").ok());
  EXPECT_FALSE(deploy::LevelFromBucket("L").ok());
}

TEST(VariantLadderTest, AffordableFractionTakesTheTightestBound) {
  const catalog::ModelCost master{1000, 1'000'000, 0};
  Budget b;
  EXPECT_DOUBLE_EQ(deploy::AffordableFraction(b, master), 1.0);
  b.max_param_bytes = 2000;  // half of 4000 bytes
  EXPECT_DOUBLE_EQ(deploy::AffordableFraction(b, master), 0.5);
  b.max_latency_ms = 2.0;
  b.latency_model = LatencyModel{100'000.0, 1.0};  // 1 ms usable → 100k MACs
  EXPECT_DOUBLE_EQ(deploy::AffordableFraction(b, master), 0.1);
  b.max_latency_ms = 0.5;  // below the fixed overhead: nothing fits
  EXPECT_DOUBLE_EQ(deploy::AffordableFraction(b, master), 0.0);
}

TEST(VariantLadderTest, LevelBudgetFitsEveryDeviceOfTheBucket) {
  const catalog::ModelCost master{50'000, 5'000'000, 0};
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> frac(1.0 / 200, 1.0);
  for (int i = 0; i < 500; ++i) {
    Budget device;
    device.max_param_bytes = static_cast<std::int64_t>(master.parameters * 4 * frac(rng));
    device.max_macs = static_cast<std::int64_t>(master.macs * frac(rng));
    const auto level = deploy::LevelFor(deploy::AffordableFraction(device, master));
    ASSERT_TRUE(level);
    const Budget built = deploy::BudgetForLevel(master, *level);
    // A variant exactly at the level's budget fits the device.
    const catalog::ModelCost variant{*built.max_param_bytes / 4, *built.max_macs, 0};
    EXPECT_TRUE(deploy::Fits(variant, device)) << "device " << i << " level " << *level;
  }
}

TEST(VariantLadderTest, BestFitIsTheMostAccurateFittingRung) {
  deploy::VariantLadder ladder({{"big", {1000, 1000, 0}, 0.90, 1},
                        {"mid", {500, 500, 0}, 0.85, 2},
                        {"small", {100, 100, 0}, 0.70, 3},
                        {"mid2", {400, 400, 0}, 0.85, 4}});
  Budget b;
  b.max_macs = 600;
  EXPECT_EQ(ladder.BestFit(b)->variant_id, "mid2");  // tie on accuracy: the newer
  b.max_macs = 5000;
  EXPECT_EQ(ladder.BestFit(b)->variant_id, "big");
  b.max_macs = 50;
  EXPECT_FALSE(ladder.BestFit(b));
}

// 1,000 devices whose budgets are spread over a 16× range need at most 12 builds.
TEST(DeploymentTest, ThousandDevicesOverSixteenTimesRangeNeedFewBuilds) {
  VariantsDb t;
  const catalog::ModelRecord model = t.AddModel({200'000, 40'000'000, 0});
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> log_range(0.0, std::log(16.0));
  std::vector<Budget> budgets;
  for (int i = 0; i < 1000; ++i) {
    // Largest device affords 1.2× the master; smallest 1/16 of that.
    const double f = 1.2 * std::exp(-log_range(rng));
    Budget b;
    b.max_param_bytes = static_cast<std::int64_t>(model.cost.parameters * 4 * f * 1.3);
    b.max_macs = static_cast<std::int64_t>(model.cost.macs * f);
    b.max_latency_ms = 50.0;
    b.latency_model = LatencyModel{model.cost.macs / 40.0, 2.0};  // master in 42 ms
    budgets.push_back(b);
    char id[32];
    std::snprintf(id, sizeof id, "dev-%04d", i);
    t.AddDevice(id, "[\"fleet\"]", b);
  }
  std::vector<std::string> requested;
  auto deployments = std::make_shared<deploy::DeploymentService>(
      t.db(), [&](const catalog::VariantRecord& v) { requested.push_back(v.id); });
  auto result = deployments->Deploy(model.id, deploy::Selector{{"fleet"}, {}}, "token:test");
  ASSERT_TRUE(result.ok()) << result.error().ToString();
  ASSERT_EQ(result->assignments.size(), 1000u);
  std::printf("1000 devices over a 16x budget range: %zu variant builds\n", requested.size());
  EXPECT_LE(requested.size(), 12u);
  EXPECT_GE(requested.size(), 8u);  // the range really spans the ladder
  EXPECT_EQ(result->builds, requested);
  EXPECT_EQ(t.Count("SELECT COUNT(*) FROM variants"), static_cast<std::int64_t>(requested.size()));
  for (const auto& a : result->assignments) EXPECT_EQ(a.state, "building") << a.device_id;

  // Deploying again builds nothing new.
  requested.clear();
  ASSERT_TRUE(deployments->Deploy(model.id, deploy::Selector{{"fleet"}, {}}, "token:test").ok());
  EXPECT_TRUE(requested.empty());

  // Every build finishes exactly at its level's budget; accuracy falls with the level.
  catalog::VariantRepository repo(t.db());
  auto variants = repo.ListForModel(model.id);
  ASSERT_TRUE(variants.ok());
  for (const auto& v : *variants) {
    const int level = deploy::LevelFromBucket(v.bucket).value();
    testing::MarkReady(repo, v.id,
                       {*v.budget.max_param_bytes / 4, *v.budget.max_macs, 0},
                       0.95 - 0.02 * level);
  }
  auto assigned = deployments->Reevaluate(model.id);
  ASSERT_TRUE(assigned.ok()) << assigned.error().ToString();
  ASSERT_EQ(assigned->size(), 1000u);
  auto ready = repo.ListForModel(model.id);
  ASSERT_TRUE(ready.ok());
  const deploy::VariantLadder ladder(deploy::ReadyRungs(*ready));
  for (std::size_t i = 0; i < assigned->size(); ++i) {
    const auto& a = (*assigned)[i];
    ASSERT_EQ(a.state, "assigned") << a.device_id;
    const int index = std::stoi(a.device_id.substr(4));
    auto best = ladder.BestFit(budgets[index]);
    ASSERT_TRUE(best);
    EXPECT_EQ(*a.variant_id, best->variant_id);
    auto desired = deployments->Desired(a.device_id);
    ASSERT_TRUE(desired.ok());
    EXPECT_EQ(desired->variant_id, a.variant_id);
  }
  EXPECT_GE(t.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'device.assign'"), 1000);
}

TEST(DeploymentTest, AVariantOfTheDevicesLevelIsReusedASmallerOneIsNot) {
  VariantsDb t;
  const catalog::ModelRecord model = t.AddModel({1000, 1'000'000, 0});
  Budget small;
  small.max_macs = 300'000;  // level 4 (25 %)
  t.AddDevice("dev-a", "[]", small);
  int builds = 0;
  deploy::DeploymentService deployments(t.db(), [&](const catalog::VariantRecord&) { ++builds; });
  auto first = deployments.Deploy(model.id, deploy::Selector{{}, {"dev-a"}}, "token:test");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(builds, 1);
  catalog::VariantRepository repo(t.db());
  testing::MarkReady(repo, first->builds[0], {200, 240'000, 0}, 0.8);

  // Another device of the same level: the variant fits it, so no build.
  Budget same;
  same.max_macs = 280'000;
  t.AddDevice("dev-c", "[]", same);
  auto second = deployments.Deploy(model.id, deploy::Selector{{}, {"dev-c"}}, "token:test");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(builds, 1);
  ASSERT_EQ(second->assignments.size(), 1u);
  EXPECT_EQ(second->assignments[0].state, "assigned");
  EXPECT_EQ(second->assignments[0].variant_id, first->builds[0]);

  // A bigger device: the small variant fits it too, but it affords level 1, so that level is
  // built and the device waits for it instead of keeping the smaller one.
  Budget big;
  big.max_macs = 900'000;
  t.AddDevice("dev-b", "[]", big);
  auto third = deployments.Deploy(model.id, deploy::Selector{{}, {"dev-b"}}, "token:test");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(builds, 2);
  ASSERT_EQ(third->assignments.size(), 1u);
  EXPECT_EQ(third->assignments[0].state, "building");
  EXPECT_EQ(third->assignments[0].bucket, "L1");
}

TEST(DeploymentTest, BadSelectorsChangeNothing) {
  VariantsDb t;
  const catalog::ModelRecord model = t.AddModel();
  t.AddDevice("dev-a", "[\"x\"]", Budget{});
  deploy::DeploymentService deployments(t.db(), nullptr);
  auto missing = deployments.Deploy(model.id, deploy::Selector{{}, {"dev-a", "dev-nope"}}, "t");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "device_not_found");
  auto no_tag = deployments.Deploy(model.id, deploy::Selector{{"y"}, {}}, "t");
  ASSERT_FALSE(no_tag.ok());
  EXPECT_EQ(no_tag.error().code, "no_devices_selected");
  auto no_model = deployments.Deploy("mdl-nope", deploy::Selector{{"x"}, {}}, "t");
  ASSERT_FALSE(no_model.ok());
  EXPECT_EQ(no_model.error().code, "model_not_found");
  EXPECT_EQ(t.Count("SELECT COUNT(*) FROM deployments"), 0);
  EXPECT_EQ(t.Count("SELECT COUNT(*) FROM device_assignments"), 0);
  EXPECT_EQ(t.Count("SELECT COUNT(*) FROM variants"), 0);

  auto bad = json::ParseObject(R"({"tags": ["a"], "devices": ["b"]})");
  EXPECT_FALSE(deploy::SelectorFromJson(*bad).ok());
  auto empty = json::ParseObject(R"({"tags": []})");
  EXPECT_FALSE(deploy::SelectorFromJson(*empty).ok());
  auto unknown = json::ParseObject(R"({"tag": ["a"]})");
  EXPECT_FALSE(deploy::SelectorFromJson(*unknown).ok());
  auto wrong_type = json::ParseObject(R"({"tags": [1]})");
  EXPECT_FALSE(deploy::SelectorFromJson(*wrong_type).ok());
}

TEST(DeploymentTest, DeviceWithoutProfileIsUnfitUntilItHasABudget) {
  VariantsDb t;
  const catalog::ModelRecord model = t.AddModel();
  t.AddDevice("dev-a", "[]", std::nullopt);
  int builds = 0;
  deploy::DeploymentService deployments(t.db(), [&](const catalog::VariantRecord&) { ++builds; });
  auto r = deployments.Deploy(model.id, deploy::Selector{{}, {"dev-a"}}, "t");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->assignments[0].state, "unfit");
  EXPECT_EQ(builds, 0);
  EXPECT_FALSE(deployments.Desired("dev-a")->variant_id);
  t.SetBudget("dev-a", Budget{});
  auto again = deployments.Reevaluate(model.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].state, "building");
  EXPECT_EQ(builds, 1);
}

TEST(DeploymentTest, MoveToALowerVersionCarriesRollbackPermission) {
  VariantsDb t;
  const catalog::ModelRecord model = t.AddModel({1000, 1'000'000, 0});
  Budget tiny;
  tiny.max_macs = 100'000;
  t.AddDevice("dev-tiny", "[]", tiny);
  deploy::DeploymentService deployments(t.db(), nullptr);
  catalog::VariantRepository repo(t.db());
  auto d1 = deployments.Deploy(model.id, deploy::Selector{{}, {"dev-tiny"}}, "t");
  ASSERT_TRUE(d1.ok());
  const std::string small_id = d1->builds.at(0);  // version 1
  testing::MarkReady(repo, small_id, {50, 90'000, 0}, 0.7);

  t.AddDevice("dev-big", "[]", Budget{});
  auto d2 = deployments.Deploy(model.id, deploy::Selector{{}, {"dev-big"}}, "t");
  ASSERT_TRUE(d2.ok());
  // The small variant fits, but the device affords the whole master: its own level is built
  // and it waits for it rather than keep a smaller, less accurate variant.
  EXPECT_EQ(d2->assignments[0].state, "building");
  EXPECT_EQ(d2->assignments[0].bucket, "L0");
  ASSERT_EQ(d2->builds.size(), 1u);

  // The big device's own, newer variant (version 2) is ready, then its budget shrinks.
  bool created = false;
  {
    auto lease = t.db()->Acquire();
    auto big = catalog::VariantRepository::EnsureIn(**lease, model.id, "L0", Budget{}, &created);
    ASSERT_TRUE(big.ok());
  }
  auto all = repo.ListForModel(model.id);
  const std::string big_id = all->back().id;
  testing::MarkReady(repo, big_id, {1000, 1'000'000, 0}, 0.9);
  ASSERT_TRUE(deployments.Reevaluate(model.id).ok());
  EXPECT_EQ(deployments.Desired("dev-big")->variant_id, big_id);
  EXPECT_FALSE(deployments.Desired("dev-big")->rollback);

  t.SetBudget("dev-big", tiny);
  auto moved = deployments.Reassign("dev-big", "system", "test");
  ASSERT_TRUE(moved.ok()) << moved.error().ToString();
  EXPECT_EQ(moved->variant_id, small_id);
  EXPECT_TRUE(moved->rollback);
  EXPECT_TRUE(deployments.Desired("dev-big")->rollback);
  EXPECT_EQ(t.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'device.reassign'"), 1);
}

TEST(DeploymentTest, AVariantOlderThanWhatTheDeviceRunsCarriesRollbackPermission) {
  // The device runs a newer variant of another model (it reported it in its heartbeats) and has
  // no assigned variant now: the older variant it is given must still come with the roll-back
  // permission, or the agent refuses it for good.
  VariantsDb t;
  const catalog::ModelRecord a = t.AddModel({1000, 1'000'000, 0});
  const catalog::ModelRecord b = t.AddModel({1000, 1'000'000, 0});
  t.AddDevice("dev-1", "[]", Budget{});
  deploy::DeploymentService deployments(t.db(), nullptr);
  catalog::VariantRepository repo(t.db());
  auto da = deployments.Deploy(a.id, deploy::Selector{{}, {"dev-1"}}, "t");
  ASSERT_TRUE(da.ok());
  const std::string old_id = da->builds.at(0);
  auto db = deployments.Deploy(b.id, deploy::Selector{{}, {"dev-1"}}, "t");
  ASSERT_TRUE(db.ok());
  const std::string new_id = db->builds.at(0);
  ASSERT_GT(repo.Get(new_id)->version, repo.Get(old_id)->version);
  testing::MarkReady(repo, old_id, {1000, 1'000'000, 0}, 0.9);
  // The device reports running B's (newer) variant; its assignment has no variant (say, a third
  // model still building): simulate both in the tables the heartbeat and deployments write.
  {
    auto lease = t.db()->Acquire();
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE((*lease)->Execute("t", "UPDATE devices SET installed_variant = ? WHERE id = ?",
                                  new_id, "dev-1").ok());
    ASSERT_TRUE((*lease)->Execute("t", "UPDATE device_assignments SET variant_id = NULL "
                                       "WHERE device_id = ?", "dev-1").ok());
  }
  auto back = deployments.Deploy(a.id, deploy::Selector{{}, {"dev-1"}}, "t");
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  ASSERT_EQ(back->assignments.at(0).variant_id, old_id);
  EXPECT_TRUE(back->assignments.at(0).rollback);
  EXPECT_TRUE(deployments.Desired("dev-1")->rollback);

  // Running the variant it is given (or an older one) needs no permission.
  {
    auto lease = t.db()->Acquire();
    ASSERT_TRUE((*lease)->Execute("t", "UPDATE devices SET installed_variant = ? WHERE id = ?",
                                  old_id, "dev-1").ok());
    ASSERT_TRUE((*lease)->Execute("t", "DELETE FROM device_assignments WHERE device_id = ?",
                                  "dev-1").ok());
  }
  auto same = deployments.Deploy(a.id, deploy::Selector{{}, {"dev-1"}}, "t");
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->assignments.at(0).rollback);
}

}  // namespace
}  // namespace edgeprune::deploy
