#include <gtest/gtest.h>

#include "server/deploy/closed_loop.hpp"
#include "server/deploy/deployments.hpp"
#include "server/telemetry/field_stats.hpp"
#include "server/telemetry/store.hpp"
#include "server/support/variants_fixture.hpp"

namespace edgeprune::telemetry {
namespace {

using testing::VariantsDb;

// Each runs on both store backends.
class TelemetryIngestTest : public ::edgeprune::testing::StoreBackendTest {};
class ClosedLoopTest : public ::edgeprune::testing::StoreBackendTest {};

wire::TelemetryReport Report(std::int64_t seq, const std::string& variant, double p95_ms) {
  wire::TelemetryReport r;
  r.seq = seq;
  r.timestamp_ms = 1'700'000'000'000 + seq;
  r.variant_id = variant;
  r.probe_accuracy = 0.8;
  r.live_latency = wire::LatencyQuantiles{p95_ms / 2, p95_ms, p95_ms * 1.2, 10};
  r.inference_count = 10;
  return r;
}

TEST_P(TelemetryIngestTest, ResentReportsAreStoredOnce) {
  VariantsDb t(GetParam());
  t.AddDevice("dev-a", "[]", Budget{});
  telemetry::TelemetryStore store(t.db());
  wire::TelemetryBatch first;
  for (int i = 1; i <= 5; ++i) first.reports.push_back(Report(i, "var-x", 3.0));
  auto r1 = store.Ingest("dev-a", first);
  ASSERT_TRUE(r1.ok()) << r1.error().ToString();
  EXPECT_EQ(r1->acked_seq, 5);
  EXPECT_EQ(r1->stored.size(), 5u);
  EXPECT_EQ(r1->duplicates, 0);

  // The ack was lost: the agent resends 4..7.
  wire::TelemetryBatch second;
  for (int i = 4; i <= 7; ++i) second.reports.push_back(Report(i, "var-x", 3.0));
  auto r2 = store.Ingest("dev-a", second);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->acked_seq, 7);
  EXPECT_EQ(r2->stored.size(), 2u);
  EXPECT_EQ(r2->duplicates, 2);
  EXPECT_EQ(store.Count("dev-a").value(), 7);

  auto recent = store.Recent("dev-a", 3);
  ASSERT_TRUE(recent.ok());
  ASSERT_EQ(recent->size(), 3u);
  EXPECT_EQ((*recent)[0].as_object().at("seq").as_int64(), 7);
  EXPECT_DOUBLE_EQ((*recent)[0].as_object().at("live_latency").as_object().at("p95_ms").as_double(),
                   3.0);
}

TEST_P(TelemetryIngestTest, UnknownDeviceIsRefusedAndNothingStored) {
  VariantsDb t(GetParam());
  telemetry::TelemetryStore store(t.db());
  wire::TelemetryBatch batch;
  batch.reports.push_back(Report(1, "var-x", 3.0));
  auto r = store.Ingest("dev-ghost", batch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "foreign_key_violation");
  EXPECT_EQ(t.Count("SELECT COUNT(*) FROM telemetry"), 0);
}

// The (device, variant) aggregate the rollout gates read is kept at ingest: means over the
// reports that carry a value, label-weighted feedback, the newest report's p95 (live when it had
// live traffic, else probe), and a resent report counted once.
TEST_P(TelemetryIngestTest, FieldStatsAreKeptPerDeviceAndVariantAtIngest) {
  VariantsDb t(GetParam());
  t.AddDevice("dev-a", "[]", Budget{});
  telemetry::TelemetryStore store(t.db());
  wire::TelemetryBatch batch;
  batch.reports.push_back(Report(1, "var-x", 3.0));  // probe 0.8, live p95 3
  batch.reports.push_back(Report(2, "var-x", 5.0));
  batch.reports[1].probe_accuracy = 0.6;
  batch.reports[1].feedback_count = 10;
  batch.reports[1].feedback_accuracy = 0.5;
  batch.reports.push_back(Report(3, "var-x", 7.0));
  batch.reports[2].probe_accuracy.reset();            // no probe in this one
  batch.reports[2].live_latency.reset();              // no live traffic: the probe's p95
  batch.reports[2].probe_latency = wire::LatencyQuantiles{4.0, 9.0, 9.5};
  batch.reports[2].feedback_count = 30;
  batch.reports[2].feedback_accuracy = 0.9;
  batch.reports.push_back(Report(4, "var-y", 2.0));
  ASSERT_TRUE(store.Ingest("dev-a", batch).ok());
  wire::TelemetryBatch resent;
  resent.reports.push_back(batch.reports[2]);
  ASSERT_TRUE(store.Ingest("dev-a", resent).ok());

  auto stats = t.db()->WithTransaction([&](store::Connection& conn) {
    return FieldStats::StatsIn(conn, {{"dev-a", "var-x"}, {"dev-a", "var-y"}});
  });
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  ASSERT_EQ(stats->count(FieldKey("dev-a", "var-x")), 1u);
  const VariantFieldStats& x = stats->at(FieldKey("dev-a", "var-x"));
  EXPECT_EQ(x.reports, 3);
  EXPECT_NEAR(*x.probe_accuracy, 0.7, 1e-9);
  EXPECT_EQ(x.labels, 40);
  EXPECT_NEAR(*x.feedback_accuracy, (0.5 * 10 + 0.9 * 30) / 40, 1e-9);
  EXPECT_DOUBLE_EQ(*x.p95_ms, 9.0);
  const VariantFieldStats& y = stats->at(FieldKey("dev-a", "var-y"));
  EXPECT_EQ(y.reports, 1);
  EXPECT_DOUBLE_EQ(*y.p95_ms, 2.0);
  EXPECT_FALSE(y.feedback_accuracy.has_value());
}

TEST(TelemetryCodecTest, MalformedBatchesAreRefusedByTheCodec) {
  EXPECT_FALSE(wire::ParseTelemetryBatch("not json").ok());
  EXPECT_FALSE(wire::ParseTelemetryBatch(R"({"reports": []})").ok());
  EXPECT_FALSE(wire::ParseTelemetryBatch(std::string(wire::kMaxTelemetryBatchBytes + 1, ' ')).ok());
}

// p95 above the SLO for N reports → throughput recalibrated, device moved to a smaller variant.
TEST_P(ClosedLoopTest, SustainedSloBreachMovesDeviceToASmallerVariant) {
  VariantsDb t(GetParam());
  const catalog::ModelRecord model = t.AddModel({1000, 1'000'000, 0});
  Budget b;
  b.max_latency_ms = 10.0;
  b.latency_model = LatencyModel{200'000.0, 1.0};  // claims 1 M MACs in 6 ms
  t.AddDevice("dev-a", "[]", b);
  std::vector<std::string> builds;
  auto deployments = std::make_shared<deploy::DeploymentService>(
      t.db(), [&](const catalog::VariantRecord& v) { builds.push_back(v.id); });
  auto d = deployments->Deploy(model.id, deploy::Selector{{}, {"dev-a"}}, "t");
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  ASSERT_EQ(builds.size(), 1u);
  catalog::VariantRepository repo(t.db());
  testing::MarkReady(repo, builds[0], {1000, 1'000'000, 0}, 0.9);
  ASSERT_TRUE(deployments->Reevaluate(model.id).ok());
  const std::string big = builds[0];
  ASSERT_EQ(deployments->Desired("dev-a")->variant_id, big);

  deploy::ClosedLoop loop(t.db(), deployments, deploy::ClosedLoopOptions{3});
  telemetry::TelemetryStore store(t.db());
  auto feed = [&](std::int64_t seq, double p95) {
    wire::TelemetryBatch batch;
    batch.reports.push_back(Report(seq, big, p95));
    auto r = store.Ingest("dev-a", batch);
    EXPECT_TRUE(r.ok());
    auto moved = loop.OnReports("dev-a", r->stored);
    EXPECT_TRUE(moved.ok()) << moved.error().ToString();
    return moved.ok() ? *moved : std::nullopt;
  };
  EXPECT_FALSE(feed(1, 25.0));
  EXPECT_FALSE(feed(2, 5.0));  // back under: the count restarts
  EXPECT_FALSE(feed(3, 25.0));
  EXPECT_FALSE(feed(4, 25.0));
  auto moved = feed(5, 25.0);  // the third breach in a row
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->state, "building");
  EXPECT_EQ(t.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'device.recalibrate'"), 1);
  EXPECT_EQ(t.Count("SELECT COUNT(*) FROM audit_log WHERE action = 'device.reassign'"), 1);
  ASSERT_EQ(builds.size(), 2u);  // a smaller variant is being built: nothing smaller existed
  auto small = repo.Get(builds[1]);
  ASSERT_TRUE(small.ok());
  EXPECT_LT(*small->budget.max_macs, 1'000'000 / 2);  // measured 24 ms for 1 M MACs → ≤ 375 k
  // Until it is ready the device keeps its variant; then it moves.
  EXPECT_EQ(deployments->Desired("dev-a")->variant_id, big);
  testing::MarkReady(repo, builds[1], {200, *small->budget.max_macs, 0}, 0.8);
  ASSERT_TRUE(deployments->Reevaluate(model.id).ok());
  EXPECT_EQ(deployments->Desired("dev-a")->variant_id, builds[1]);
}

EDGEPRUNE_STORE_BACKENDS(TelemetryIngestTest);
EDGEPRUNE_STORE_BACKENDS(ClosedLoopTest);

}  // namespace
}  // namespace edgeprune::telemetry
