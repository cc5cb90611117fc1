// The durable telemetry queue: sequence numbers, batches, acks, and survival of a killed process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/telemetry/telemetry_collector.hpp"
#include "agent/telemetry/telemetry_queue.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

wire::TelemetryReport Report(std::int64_t inferences) {
  wire::TelemetryReport r;
  r.timestamp_ms = 1700000000000 + inferences;
  r.variant_id = "v1";
  r.inference_count = inferences;
  r.probe_accuracy = 0.875;
  r.probe_latency = wire::LatencyQuantiles{1.0, 2.0, 3.0, 100};
  return r;
}

TEST(TelemetryQueueTest, AssignsIncreasingSeqAndAcksUpTo) {
  edgeprune::testing::TempDir dir;
  auto q = TelemetryQueue::Open(dir.File("telemetry.db"));
  ASSERT_TRUE(q.ok()) << q.error().ToString();
  for (int i = 1; i <= 5; ++i) {
    auto seq = (*q)->Append(Report(i));
    ASSERT_TRUE(seq.ok()) << seq.error().ToString();
    EXPECT_EQ(*seq, i);
  }
  auto batch = (*q)->Peek(3);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 3u);
  EXPECT_EQ((*batch)[0].seq, 1);
  EXPECT_EQ((*batch)[2].seq, 3);
  EXPECT_EQ((*batch)[2].inference_count, 3);
  EXPECT_DOUBLE_EQ((*batch)[0].probe_latency->p95_ms, 2.0);

  ASSERT_TRUE((*q)->Ack(3).ok());
  EXPECT_EQ((*q)->Pending().value(), 2);
  EXPECT_EQ((*q)->Peek(10)->front().seq, 4);
  EXPECT_TRUE((*q)->Ack(2).ok()) << "acking already-acked seqs is harmless";

  auto beyond = (*q)->Ack(6);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.error().code, "ack_out_of_range");
  EXPECT_EQ((*q)->Pending().value(), 2);
}

TEST(TelemetryQueueTest, SeqNeverRepeatsAfterEverythingWasAckedAndReopened) {
  edgeprune::testing::TempDir dir;
  {
    auto q = TelemetryQueue::Open(dir.File("telemetry.db"));
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE((*q)->Append(Report(1)).ok());
    ASSERT_TRUE((*q)->Append(Report(2)).ok());
    ASSERT_TRUE((*q)->Ack(2).ok());
  }
  auto q = TelemetryQueue::Open(dir.File("telemetry.db"));
  ASSERT_TRUE(q.ok());
  EXPECT_EQ((*q)->Pending().value(), 0);
  EXPECT_EQ((*q)->Append(Report(3)).value(), 3);
}

TEST(TelemetryQueueTest, ReportsSurviveAKilledProcess) {
  edgeprune::testing::TempDir dir;
  const auto path = dir.File("telemetry.db");
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child appends and dies by SIGKILL without closing anything.
    auto q = TelemetryQueue::Open(path);
    if (!q.ok()) _exit(2);
    for (int i = 1; i <= 7; ++i) {
      if (!(*q)->Append(Report(i)).ok()) _exit(3);
    }
    ::kill(::getpid(), SIGKILL);
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  auto q = TelemetryQueue::Open(path);
  ASSERT_TRUE(q.ok()) << q.error().ToString();
  auto all = (*q)->Peek(100);
  ASSERT_TRUE(all.ok()) << all.error().ToString();
  ASSERT_EQ(all->size(), 7u);
  EXPECT_EQ(all->back().seq, 7);
  EXPECT_EQ(all->back().inference_count, 7);
  EXPECT_EQ((*q)->Append(Report(8)).value(), 8);
}

TEST(TelemetryQueueTest, UnusableFilesAreRefusedNamingThePath) {
  edgeprune::testing::TempDir dir;
  auto not_db = dir.WriteFile("junk.db", std::string(4096, 'x'));
  auto q = TelemetryQueue::Open(not_db);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find(not_db), std::string::npos);
  auto missing_dir = TelemetryQueue::Open(dir.File("no/such/dir/t.db"));
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_EQ(missing_dir.error().code, "queue_open_failed");
}

TEST(TelemetryCollectorTest, WindowsLatencyCountAndFeedback) {
  TelemetryCollector c(CollectorOptions{2, 1000});
  c.RecordInference("r1", 3, 1.0);
  c.RecordInference("r2", 4, 2.0);
  c.RecordInference("r3", 5, 3.0);  // evicts r1
  EXPECT_EQ(c.RecordFeedback("r1", 3).error().code, "unknown_request");
  EXPECT_TRUE(c.RecordFeedback("r2", 4).value());
  EXPECT_FALSE(c.RecordFeedback("r3", 1).value());
  EXPECT_EQ(c.RecordFeedback("r3", 5).error().code, "feedback_duplicate");

  auto r = c.TakeReport("v9", 42);
  EXPECT_EQ(r.variant_id, "v9");
  EXPECT_EQ(r.timestamp_ms, 42);
  EXPECT_EQ(r.inference_count, 3);
  ASSERT_TRUE(r.live_latency.has_value());
  EXPECT_EQ(r.live_latency->count, 3);
  EXPECT_DOUBLE_EQ(r.live_latency->p50_ms, 2.0);
  EXPECT_EQ(r.feedback_count, 2);
  EXPECT_DOUBLE_EQ(*r.feedback_accuracy, 0.5);

  auto empty = c.TakeReport("v9", 43);
  EXPECT_EQ(empty.inference_count, 0);
  EXPECT_FALSE(empty.live_latency.has_value());
  EXPECT_FALSE(empty.feedback_accuracy.has_value());
}

TEST(TelemetryWireTest, BatchCodecIsStrict) {
  wire::TelemetryBatch b;
  b.reports.push_back(Report(1));
  b.reports.back().seq = 1;
  b.reports.push_back(Report(2));
  b.reports.back().seq = 2;
  auto parsed = wire::ParseTelemetryBatch(json::Serialize(wire::ToJson(b)));
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->reports.size(), 2u);
  EXPECT_DOUBLE_EQ(*parsed->reports[0].probe_accuracy, 0.875);

  b.reports[1].seq = 1;
  EXPECT_FALSE(wire::ParseTelemetryBatch(json::Serialize(wire::ToJson(b))).ok());
  EXPECT_EQ(wire::ParseTelemetryBatch("{\"reports\": []}").error().code, "invalid_field");
  EXPECT_EQ(wire::ParseTelemetryBatch("{\"reports\": [{\"seq\": 1}]}").error().code,
            "invalid_field");
  EXPECT_EQ(wire::ParseTelemetryBatch(std::string(100, ' '), 10).error().code, "body_too_large");
}

}  // namespace
}  // namespace edgeprune::agent
