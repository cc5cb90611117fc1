// Job leases: several processes ("replicas") share one queue. Each replica here is its own
// database handle and JobQueue, as a second server or worker process would open them; the clock
// is the fixture's, so a lease expires when the test says so.

#include <future>
#include <set>
#include <thread>

#include "server/jobs/worker_pool.hpp"
#include "server/support/jobs_fixture.hpp"

namespace edgeprune::jobs {
namespace {

using JobLeaseTest = JobsFixture;

constexpr std::int64_t kLeaseMs = 30'000;  // JobQueueOptions' default, which MakeQueue keeps

TEST_P(JobLeaseTest, TwoReplicasClaimingAtOnceNeverGetTheSameJob) {
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(queue_->Enqueue("k", boost::json::object{{"n", i}}).ok());
  }
  auto other_db = OpenAnotherHandle();
  auto other = MakeQueue(*other_db);
  JobQueue* replicas[2] = {queue_.get(), other.get()};
  constexpr int kThreads = 6;  // three per replica
  std::vector<std::vector<std::string>> claimed(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      JobQueue& queue = *replicas[t % 2];
      const std::string worker = "replica" + std::to_string(t % 2) + "/" + std::to_string(t);
      for (;;) {
        auto job = queue.Claim({"k"}, worker);
        if (!job.ok()) {
          ADD_FAILURE() << job.error().ToString();
          return;
        }
        if (!job->has_value()) return;
        claimed[t].push_back((*job)->id);
        EXPECT_EQ((*job)->lease_owner, worker);
        EXPECT_EQ((*job)->lease_expires_ms, now_ms_.load() + kLeaseMs);
        Status done = queue.Succeed((*job)->id, worker, {});
        EXPECT_TRUE(done.ok()) << done.error().ToString();
      }
    });
  }
  for (auto& th : threads) th.join();
  ExpectEachJobClaimedOnce(claimed, kJobs);
  auto jobs = queue_->List();
  ASSERT_TRUE(jobs.ok()) << jobs.error().ToString();
  for (const auto& job : *jobs) {
    EXPECT_EQ(job.state, JobState::kSucceeded) << job.id;
    EXPECT_EQ(job.attempts, 1) << job.id;
    EXPECT_EQ(job.lease_owner, "") << job.id;
  }
}

TEST_P(JobLeaseTest, AnExpiredLeaseIsTakenBackAndTheJobResumesFromItsCheckpoint) {
  const std::string id = queue_->Enqueue("k", {})->id;
  auto replica_b_db = OpenAnotherHandle();
  auto replica_b = MakeQueue(*replica_b_db);

  ASSERT_TRUE(queue_->Claim({"k"}, "a/0")->has_value());
  ASSERT_TRUE(queue_->SaveCheckpoint(id, "a/0", "step 4 of 9").ok());
  ASSERT_TRUE(queue_->ReportProgress(id, "a/0", "prune", 44).ok());

  // Renewed in time: the job stays a/0's past its first lease.
  now_ms_ += kLeaseMs - 1;
  EXPECT_FALSE(replica_b->Claim({"k"}, "b/0")->has_value());
  ASSERT_TRUE(queue_->RenewLease(id, "a/0").ok());
  EXPECT_EQ(queue_->Get(id)->lease_expires_ms, now_ms_.load() + kLeaseMs);
  now_ms_ += kLeaseMs - 1;
  EXPECT_FALSE(replica_b->Claim({"k"}, "b/0")->has_value());

  // Not renewed: after the lease, replica B takes the job back and resumes it.
  now_ms_ += 2;
  auto taken = replica_b->Claim({"k"}, "b/0");
  ASSERT_TRUE(taken.ok()) << taken.error().ToString();
  ASSERT_TRUE(taken->has_value());
  const Job& job = **taken;
  EXPECT_EQ(job.id, id);
  EXPECT_EQ(job.attempts, 2);
  EXPECT_EQ(job.lease_owner, "b/0");
  EXPECT_EQ(job.phase, "prune");
  EXPECT_NE(job.error.find("a/0"), std::string::npos) << job.error;
  EXPECT_EQ(**replica_b->LoadCheckpoint(job), "step 4 of 9");

  // The old owner can no longer write anything to it.
  EXPECT_EQ(queue_->RenewLease(id, "a/0").error().code, "job_not_running");
  EXPECT_EQ(queue_->ReportProgress(id, "a/0", "fine-tune", 90).error().code, "job_not_running");
  EXPECT_EQ(queue_->SaveCheckpoint(id, "a/0", "stale").error().code, "job_not_running");
  EXPECT_EQ(queue_->Succeed(id, "a/0", {}).error().code, "job_not_running");
  EXPECT_EQ(queue_->Fail(id, "a/0", MakeError(ErrorKind::kIo, "disk", "x")).error().code,
            "job_not_running");
  EXPECT_EQ(queue_->Requeue(id, "a/0", "shutdown").error().code, "job_not_running");
  EXPECT_EQ(**replica_b->LoadCheckpoint(*replica_b->Get(id)), "step 4 of 9");

  ASSERT_TRUE(replica_b->Succeed(id, "b/0", boost::json::object{{"done", true}}).ok());
  auto done = queue_->Get(id);
  EXPECT_EQ(done->state, JobState::kSucceeded);
  EXPECT_EQ(done->worker, "b/0");
  EXPECT_EQ(done->lease_owner, "");
}

TEST_P(JobLeaseTest, AJobWhoseWorkerDiesEveryAttemptEndsFailedAndCancelsAreHonoured) {
  EnqueueOptions two;
  two.max_attempts = 2;
  const std::string doomed = queue_->Enqueue("k", {}, two)->id;
  ASSERT_TRUE(queue_->Claim({"k"}, "a/0")->has_value());
  now_ms_ += kLeaseMs + 1;
  auto second = queue_->Claim({"k"}, "b/0");
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->attempts, 2);
  now_ms_ += kLeaseMs + 1;
  auto expired = queue_->ExpireLeases();
  ASSERT_TRUE(expired.ok()) << expired.error().ToString();
  EXPECT_EQ(*expired, 0);  // nothing requeued: its last attempt is used up
  auto failed = queue_->Get(doomed);
  EXPECT_EQ(failed->state, JobState::kFailed);
  EXPECT_NE(failed->error.find("abandoned"), std::string::npos) << failed->error;
  EXPECT_FALSE(queue_->Claim({"k"}, "c/0")->has_value());

  const std::string cancel_me = queue_->Enqueue("k", {})->id;
  ASSERT_TRUE(queue_->Claim({"k"}, "a/0")->has_value());
  ASSERT_TRUE(queue_->Cancel(cancel_me).ok());  // asked while its worker hangs
  now_ms_ += kLeaseMs + 1;
  EXPECT_FALSE(queue_->Claim({"k"}, "c/0")->has_value());
  EXPECT_EQ(StateOf(cancel_me), JobState::kCancelled);
}

WorkerPoolOptions PoolOptions(std::chrono::milliseconds renew) {
  WorkerPoolOptions options;
  options.threads = 1;
  options.poll_interval = std::chrono::milliseconds(20);
  options.lease_renew_interval = renew;
  return options;
}

// The pool renews the lease of a running job, so another replica cannot take it while it runs
// however long it runs.
TEST_P(JobLeaseTest, TheWorkerPoolRenewsTheLeaseOfARunningJob) {
  std::promise<void> started;
  std::promise<void> release;
  auto released = release.get_future().share();
  WorkerPool pool(*queue_, PoolOptions(std::chrono::milliseconds(5)));
  ASSERT_TRUE(pool.Register("long", [&](JobContext&) -> Result<boost::json::object> {
                    started.set_value();
                    released.wait();
                    return boost::json::object{};
                  }).ok());
  ASSERT_TRUE(pool.Start().ok());
  const std::string id = queue_->Enqueue("long", {})->id;
  started.get_future().wait();
  auto replica_b_db = OpenAnotherHandle();
  auto replica_b = MakeQueue(*replica_b_db);
  for (int round = 0; round < 3; ++round) {
    now_ms_ += kLeaseMs * 2 / 3;  // past the first lease by the second round
    const std::int64_t renewed_to = now_ms_.load() + kLeaseMs;
    ASSERT_TRUE(WaitUntil([&] { return queue_->Get(id)->lease_expires_ms == renewed_to; }))
        << "round " << round;
    EXPECT_FALSE(replica_b->Claim({"long"}, "b/0")->has_value()) << "round " << round;
  }
  release.set_value();
  ASSERT_TRUE(WaitUntil([&] { return StateOf(id) == JobState::kSucceeded; }));
  pool.Stop();
  EXPECT_EQ(queue_->Get(id)->attempts, 1);
}

// A worker whose lease ran out (it was not renewed: here the renewer is too slow) learns it at
// its next write, stops, and leaves the job to the replica that took it back.
TEST_P(JobLeaseTest, AWorkerThatLostItsLeaseStopsAndWritesNothingMore) {
  std::promise<void> started;
  std::promise<void> go_on;
  auto go = go_on.get_future().share();
  std::promise<std::string> seen;
  std::mutex mu;
  std::vector<std::string> outcomes;
  WorkerPoolOptions options = PoolOptions(std::chrono::hours(1));
  options.on_attempt_end = [&](const std::string&, const char* outcome, double) {
    std::lock_guard<std::mutex> lock(mu);
    outcomes.emplace_back(outcome);
  };
  WorkerPool pool(*queue_, options);
  ASSERT_TRUE(pool.Register("long", [&](JobContext& ctx) -> Result<boost::json::object> {
                    started.set_value();
                    go.wait();
                    Status progress = ctx.Progress("fine-tune", 80);
                    seen.set_value(progress.ok() ? "ok" : progress.error().code);
                    if (!progress.ok()) return progress.error();
                    return boost::json::object{};
                  }).ok());
  ASSERT_TRUE(pool.Start().ok());
  const std::string id = queue_->Enqueue("long", {})->id;
  started.get_future().wait();

  now_ms_ += kLeaseMs + 1;
  auto replica_b_db = OpenAnotherHandle();
  auto replica_b = MakeQueue(*replica_b_db);
  auto taken = replica_b->Claim({"long"}, "b/0");
  ASSERT_TRUE(taken.ok() && taken->has_value());
  go_on.set_value();
  EXPECT_EQ(seen.get_future().get(), "lease_lost");
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !outcomes.empty();
  }));
  pool.Stop();
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(outcomes, std::vector<std::string>{"lease_lost"});
  }
  auto job = queue_->Get(id);
  EXPECT_EQ(job->state, JobState::kRunning);
  EXPECT_EQ(job->lease_owner, "b/0");
  EXPECT_EQ(job->attempts, 2);
  EXPECT_TRUE(replica_b->Succeed(id, "b/0", {}).ok());
}

// GET /api/v1/jobs/{id} shows JobToJson: an operator sees which worker holds a running job and
// when another process would take it back.
TEST_P(JobLeaseTest, TheJobJsonCarriesTheLeaseOwnerAndExpiryWhileRunning) {
  auto enqueued = queue_->Enqueue("k", boost::json::object{{"n", 1}});
  ASSERT_TRUE(enqueued.ok());
  auto queued = queue_->Get(enqueued->id);
  ASSERT_TRUE(queued.ok());
  auto json = JobToJson(*queued);
  EXPECT_EQ(json.at("lease_owner").as_string(), "");
  EXPECT_TRUE(json.at("lease_expires_at").is_null());
  EXPECT_EQ(json.at("attempts").as_int64(), 0);

  auto claimed = queue_->Claim({"k"}, "host-a/pid1-aaaaaa/0");
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  json = JobToJson(**claimed);
  EXPECT_EQ(json.at("state").as_string(), "running");
  EXPECT_EQ(json.at("lease_owner").as_string(), "host-a/pid1-aaaaaa/0");
  EXPECT_EQ(json.at("lease_expires_at").as_int64(), now_ms_.load() + kLeaseMs);
  EXPECT_EQ(json.at("attempts").as_int64(), 1);

  // A renewal moves the expiry; finishing clears the lease.
  now_ms_ += 10'000;
  ASSERT_TRUE(queue_->RenewLease(enqueued->id, "host-a/pid1-aaaaaa/0").ok());
  json = JobToJson(*queue_->Get(enqueued->id));
  EXPECT_EQ(json.at("lease_expires_at").as_int64(), now_ms_.load() + kLeaseMs);
  ASSERT_TRUE(queue_->Succeed(enqueued->id, "host-a/pid1-aaaaaa/0", {}).ok());
  json = JobToJson(*queue_->Get(enqueued->id));
  EXPECT_EQ(json.at("lease_owner").as_string(), "");
  EXPECT_TRUE(json.at("lease_expires_at").is_null());
}

EDGEPRUNE_STORE_BACKENDS(JobLeaseTest);

}  // namespace
}  // namespace edgeprune::jobs
