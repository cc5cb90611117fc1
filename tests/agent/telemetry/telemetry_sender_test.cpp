// TelemetrySender against a real HTTPS server: batches, acks, failures and duplicates.
#include <gtest/gtest.h>

#include "support/build_paths.hpp"
#include "agent/telemetry/telemetry_queue.hpp"
#include "agent/telemetry/telemetry_reporter.hpp"
#include "agent/telemetry/telemetry_sender.hpp"
#include "download_test_server.hpp"
#include "runtime_fixture_models.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

class SenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto q = TelemetryQueue::Open(dir_.File("telemetry.db"));
    ASSERT_TRUE(q.ok()) << q.error().ToString();
    queue_ = std::move(q).value();
    client_ = server_.MakeClient();
  }
  void AppendReports(int n) {
    for (int i = 0; i < n; ++i) {
      wire::TelemetryReport r;
      r.timestamp_ms = 1700000000000 + i;
      r.variant_id = "v1";
      r.inference_count = i;
      ASSERT_TRUE(queue_->Append(r).ok());
    }
  }

  edgeprune::testing::TempDir dir_{"sender-test"};
  edgeprune::testing::AgentTestServer server_{dir_.path()};
  std::unique_ptr<http::HttpsClient> client_;
  std::unique_ptr<TelemetryQueue> queue_;
};

TEST_F(SenderTest, DrainsTheQueueInBatchesAndDeletesOnlyAckedReports) {
  AppendReports(250);
  TelemetrySender sender(*queue_, *client_, SenderOptions{"/agent/v1/telemetry", 100, 50});
  auto stats = sender.Flush();
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(stats->batches, 3);
  EXPECT_EQ(stats->acked, 250);
  EXPECT_EQ(queue_->Pending().value(), 0);
  auto stored = server_.stored();
  ASSERT_EQ(stored.size(), 250u);
  EXPECT_EQ(stored.begin()->first, 1);
  EXPECT_EQ(stored.rbegin()->first, 250);
  EXPECT_EQ(stored.at(17).inference_count, 16);
}

TEST_F(SenderTest, ServerFailureKeepsReportsForTheNextFlush) {
  AppendReports(5);
  server_.telemetry_status = 503;
  TelemetrySender sender(*queue_, *client_);
  auto failed = sender.Flush();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, "telemetry_rejected");
  EXPECT_EQ(queue_->Pending().value(), 5);

  server_.telemetry_status = 200;
  auto ok = sender.Flush();
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(ok->acked, 5);
  EXPECT_EQ(server_.stored().size(), 5u);
}

TEST_F(SenderTest, PartialAckKeepsTheRestAndResendIsDeduplicatedByTheServer) {
  AppendReports(10);
  server_.ack_cap = 4;
  TelemetrySender sender(*queue_, *client_, SenderOptions{"/agent/v1/telemetry", 10, 1});
  auto first = sender.Flush();
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(first->acked, 4);
  EXPECT_EQ(queue_->Pending().value(), 6);
  EXPECT_EQ(queue_->Peek(1)->front().seq, 5);

  server_.ack_cap = -1;
  ASSERT_TRUE(sender.Flush().ok());
  EXPECT_EQ(queue_->Pending().value(), 0);
  EXPECT_EQ(server_.stored().size(), 10u);

  // Nothing to send: no request at all.
  const int posts = server_.telemetry_posts.load();
  auto idle = sender.Flush();
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->sent, 0);
  EXPECT_EQ(server_.telemetry_posts.load(), posts);
}

TEST_F(SenderTest, AServerThatAcksNothingIsAnError) {
  AppendReports(3);
  server_.ack_cap = 0;
  TelemetrySender sender(*queue_, *client_);
  auto r = sender.Flush();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "telemetry_not_acked");
  EXPECT_EQ(queue_->Pending().value(), 3);
}

TEST_F(SenderTest, ReporterRecordsLiveAndProbeFiguresThatReachTheServer) {
  edgeprune::testing::SyntheticTask task{1, 8, 8, 4};
  const auto model = dir_.File("m.pt");
  edgeprune::testing::WriteTemplateModel(model, task);
  ModelRuntime runtime(RuntimeOptions{1, 1, edgeprune::testing::AgentTorchModule()});
  auto probe = std::make_shared<ProbeSet>(edgeprune::testing::MakeProbeSet(task, 2));
  TelemetryCollector collector;
  TelemetryReporter reporter(collector, runtime, *queue_);

  // Before any model: a report with counts only.
  ASSERT_EQ(reporter.Record(1000).value(), 1);
  ASSERT_TRUE(runtime.Install(edgeprune::testing::SpecFor("m1", model, task), probe).ok());
  for (int k = 0; k < 4; ++k) {
    auto r = runtime.Infer(edgeprune::testing::MakeSample(task, k), task.input_shape());
    ASSERT_TRUE(r.ok());
    collector.RecordInference("req-" + std::to_string(k), r->class_index, 0.5 + k);
  }
  ASSERT_TRUE(collector.RecordFeedback("req-1", 1).ok());
  ASSERT_EQ(reporter.Record(2000).value(), 2);

  TelemetrySender sender(*queue_, *client_);
  ASSERT_TRUE(reporter.Flush(sender).ok());
  auto stored = server_.stored();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored.at(1).variant_id, "");
  EXPECT_FALSE(stored.at(1).probe_accuracy.has_value());
  const auto& r = stored.at(2);
  EXPECT_EQ(r.variant_id, "m1");
  EXPECT_EQ(r.timestamp_ms, 2000);
  EXPECT_EQ(r.inference_count, 4);
  EXPECT_DOUBLE_EQ(*r.probe_accuracy, 1.0);
  EXPECT_EQ(r.probe_latency->count, 8);
  EXPECT_EQ(r.live_latency->count, 4);
  EXPECT_DOUBLE_EQ(r.live_latency->p99_ms, 3.5);
  EXPECT_DOUBLE_EQ(*r.feedback_accuracy, 1.0);
}

}  // namespace
}  // namespace edgeprune::agent
