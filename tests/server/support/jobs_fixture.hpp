#pragma once
// A migrated database (each test runs on SQLite and on PostgreSQL, store_backends.hpp), a blob
// store and a job queue with a settable clock, in a temp dir.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/jobs/job_queue.hpp"
#include "server/store/blob_store.hpp"
#include "server/store/database.hpp"
#include "server/store/migrator.hpp"
#include "support/store_backends.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune::jobs {

class JobsFixture : public edgeprune::testing::StoreBackendTest {
 protected:
  void SetUp() override {
    db_ = OpenDatabase();
    ASSERT_NE(db_, nullptr);
    auto blobs = store::BlobStore::Open(dir_.path());
    ASSERT_TRUE(blobs.ok());
    blobs_ = std::move(blobs).value();
    queue_ = MakeQueue(*db_);
  }

  // Another handle on the same database, as a second process would open it.
  std::shared_ptr<store::Database> OpenAnotherHandle() { return Backend().Open(false); }

  std::unique_ptr<JobQueue> MakeQueue(store::Database& db, std::int64_t retry_base_ms = 1000) {
    JobQueueOptions options;
    options.now_ms = [this] { return now_ms_.load(); };
    options.retry_base_ms = retry_base_ms;
    options.retry_max_ms = 8000;
    return std::make_unique<JobQueue>(db, blobs_.get(), options);
  }

  // Polls `done` until it holds or 20 s pass; returns whether it held.
  static bool WaitUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return done();
  }

  JobState StateOf(const std::string& id) {
    auto job = queue_->Get(id);
    EXPECT_TRUE(job.ok());
    return job.ok() ? job->state : JobState::kQueued;
  }

  testing::TempDir dir_{"edgeprune-jobs"};
  std::atomic<std::int64_t> now_ms_{1'700'000'000'000};
  std::shared_ptr<store::Database> db_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<JobQueue> queue_;
};

// Concurrent claimers, each listing the job ids it claimed: every one of `jobs` jobs was claimed
// exactly once across them.
inline void ExpectEachJobClaimedOnce(const std::vector<std::vector<std::string>>& claimed,
                                     int jobs) {
  std::set<std::string> unique;
  std::size_t total = 0;
  for (const auto& ids : claimed) {
    total += ids.size();
    unique.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(total, static_cast<std::size_t>(jobs));
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(jobs));
}

}  // namespace edgeprune::jobs
