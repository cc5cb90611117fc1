// ResumableDownloader against a real HTTPS server on 127.0.0.1:0 whose payload route can honour
// Range, ignore it, or fail after a number of requests (an interrupted download).
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "agent/download/downloader.hpp"
#include "download_test_server.hpp"
#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::agent {
namespace {

class DownloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 10000; ++i) payload_.push_back(static_cast<char>((i * 7919) % 251));
    expected_.size_bytes = static_cast<std::int64_t>(payload_.size());
    expected_.sha256 = crypto::Sha256Hex(payload_);
    server_.AddVariant("v1", {"{}", "", payload_, ""});
    client_ = server_.MakeClient();
  }

  Result<DownloadStats> Fetch(std::int64_t chunk, const std::string& target = kTarget) {
    DownloadOptions o;
    o.chunk_bytes = chunk;
    ResumableDownloader d(*client_, o);
    return d.Fetch(target, partial_, expected_);
  }

  static constexpr const char* kTarget = "/agent/v1/variants/v1/payload";
  edgeprune::testing::TempDir dir_{"download-test"};
  edgeprune::testing::AgentTestServer server_{dir_.path()};
  std::unique_ptr<http::HttpsClient> client_;
  std::string payload_;
  wire::ManifestPayload expected_;
  std::string partial_ = dir_.File("v1.part");
};

TEST_F(DownloadTest, FetchesInRangeChunksAndVerifies) {
  auto stats = Fetch(3000);
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(stats->resumed_from, 0);
  EXPECT_EQ(stats->bytes_fetched, 10000);
  EXPECT_EQ(stats->requests, 4);
  EXPECT_FALSE(stats->restarted);
  EXPECT_EQ(fs::ReadFile(partial_).value(), payload_);
  auto ranges = server_.ranges();
  EXPECT_EQ(ranges.front(), "bytes=0-2999");
  EXPECT_EQ(ranges.back(), "bytes=9000-");
}

TEST_F(DownloadTest, InterruptedDownloadResumesFromThePartialFile) {
  server_.fail_payload_after = 3;
  auto first = Fetch(1000);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, "download_failed");
  EXPECT_EQ(first.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(fs::ReadFile(partial_)->size(), 3000u) << "completed chunks are kept";

  server_.fail_payload_after = -1;
  auto second = Fetch(1000);
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ(second->resumed_from, 3000);
  EXPECT_EQ(second->bytes_fetched, 7000);
  EXPECT_EQ(fs::ReadFile(partial_).value(), payload_);
}

// A rate cap waits between chunks through the given wait; a stopping agent ends the wait and the
// download keeps what it has, to resume later.
TEST_F(DownloadTest, RateCapWaitsBetweenChunksAndAStopKeepsThePartialFile) {
  std::vector<std::chrono::milliseconds> waits;
  DownloadOptions o;
  o.chunk_bytes = 4000;
  o.max_bytes_per_s = 1000;  // 4 s per chunk: the wait is asked for, never really taken
  o.wait = [&waits](std::chrono::milliseconds d) {
    waits.push_back(d);
    return waits.size() < 2;  // the agent is stopped during the second wait
  };
  ResumableDownloader capped(*client_, o);
  auto first = capped.Fetch(kTarget, partial_, expected_);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().code, "download_interrupted");
  ASSERT_EQ(waits.size(), 2u);
  EXPECT_GT(waits[0].count(), 3000) << "the first chunk is held to the cap";
  EXPECT_EQ(fs::ReadFile(partial_)->size(), 8000u) << "both completed chunks are kept";

  auto rest = Fetch(4000);
  ASSERT_TRUE(rest.ok()) << rest.error().ToString();
  EXPECT_EQ(rest->resumed_from, 8000);
  EXPECT_EQ(rest->bytes_fetched, 2000);
  EXPECT_EQ(fs::ReadFile(partial_).value(), payload_);
}

TEST_F(DownloadTest, PartialLeftByAKilledAgentIsResumedWithOpenRange) {
  ASSERT_TRUE(fs::WriteFileAtomic(partial_, payload_.substr(0, 4321)).ok());
  auto stats = Fetch(1 << 20);
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_EQ(stats->resumed_from, 4321);
  EXPECT_EQ(stats->requests, 1);
  EXPECT_EQ(server_.ranges().front(), "bytes=4321-");
  EXPECT_EQ(fs::ReadFile(partial_).value(), payload_);
}

TEST_F(DownloadTest, ServerIgnoringRangeRestartsFromZero) {
  ASSERT_TRUE(fs::WriteFileAtomic(partial_, payload_.substr(0, 5000)).ok());
  server_.honour_range = false;
  auto stats = Fetch(1000);
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_TRUE(stats->restarted);
  EXPECT_EQ(stats->bytes_fetched, 10000);
  EXPECT_EQ(fs::ReadFile(partial_).value(), payload_);
}

TEST_F(DownloadTest, CorruptPartialFailsVerificationAndIsDiscarded) {
  std::string wrong = payload_.substr(0, 2000);
  wrong[10] = static_cast<char>(wrong[10] ^ 0x55);
  ASSERT_TRUE(fs::WriteFileAtomic(partial_, wrong).ok());
  auto bad = Fetch(4000);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "payload_digest_mismatch");
  EXPECT_FALSE(fs::ReadFile(partial_).ok()) << "a corrupt partial must not be resumed";
  auto good = Fetch(4000);
  ASSERT_TRUE(good.ok()) << good.error().ToString();
  EXPECT_EQ(good->resumed_from, 0);
}

TEST_F(DownloadTest, OversizedPartialRestartsAndCompletePartialNeedsNoRequest) {
  ASSERT_TRUE(fs::WriteFileAtomic(partial_, payload_ + "trailing junk").ok());
  auto stats = Fetch(1 << 20);
  ASSERT_TRUE(stats.ok()) << stats.error().ToString();
  EXPECT_TRUE(stats->restarted);
  auto again = Fetch(1 << 20);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(again->requests, 0);
  EXPECT_EQ(again->resumed_from, 10000);
}

TEST_F(DownloadTest, MissingVariantIsNotFound) {
  auto r = Fetch(1000, "/agent/v1/variants/absent/payload");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "download_failed");
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  // Retried: the manifest was just served; a retry fetches it again and learns the truth.
  EXPECT_EQ(r.error().retry, Retry::kTransient);
}

}  // namespace
}  // namespace edgeprune::agent
