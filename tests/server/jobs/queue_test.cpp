#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "server/support/jobs_fixture.hpp"

namespace edgeprune::jobs {
namespace {

using JobQueueTest = JobsFixture;

boost::json::object Payload(std::int64_t n) { return boost::json::object{{"n", n}}; }

TEST_P(JobQueueTest, EnqueueGetListAndJson) {
  auto a = queue_->Enqueue("build_variant", Payload(1));
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->id.rfind("job-", 0), 0u);
  EXPECT_EQ(a->id.size(), 20u);
  auto b = queue_->Enqueue("other", Payload(2));
  ASSERT_TRUE(b.ok());

  auto job = queue_->Get(a->id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->kind, "build_variant");
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->payload.at("n").as_int64(), 1);
  EXPECT_EQ(job->attempts, 0);
  EXPECT_EQ(job->max_attempts, 3);
  EXPECT_EQ(job->created_at, now_ms_.load());

  auto all = queue_->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].id, b->id);  // newest first
  JobFilter only_other;
  only_other.kind = "other";
  EXPECT_EQ(queue_->List(only_other)->size(), 1u);
  JobFilter running;
  running.state = JobState::kRunning;
  EXPECT_TRUE(queue_->List(running)->empty());

  auto json = JobToJson(*job);
  EXPECT_EQ(json.at("state").as_string(), "queued");
  EXPECT_EQ(json.at("id").as_string(), a->id);
  EXPECT_TRUE(json.at("finished_at").is_null());

  auto missing = queue_->Get("job-0000000000000000");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "job_not_found");
}

TEST_P(JobQueueTest, BadEnqueuesAreRefusedAndChangeNothing) {
  for (const std::string& kind :
       std::vector<std::string>{"", "Build", "a b", "../x", std::string(65, 'a')}) {
    auto r = queue_->Enqueue(kind, Payload(1));
    ASSERT_FALSE(r.ok()) << kind;
    EXPECT_EQ(r.error().code, "invalid_job_kind");
  }
  EnqueueOptions zero;
  zero.max_attempts = 0;
  EXPECT_EQ(queue_->Enqueue("k", Payload(1), zero).error().code, "invalid_max_attempts");
  EXPECT_TRUE(queue_->List()->empty());
  EXPECT_EQ(ParseJobState("sleeping").error().code, "invalid_job_state");
}

TEST_P(JobQueueTest, ClaimsByPriorityThenFifoAndOnlyTheGivenKinds) {
  auto first = queue_->Enqueue("k", Payload(1));
  auto second = queue_->Enqueue("k", Payload(2));
  EnqueueOptions urgent;
  urgent.priority = 5;
  auto third = queue_->Enqueue("k", Payload(3), urgent);
  auto other = queue_->Enqueue("other", Payload(4));
  ASSERT_TRUE(first.ok() && second.ok() && third.ok() && other.ok());

  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    auto claimed = queue_->Claim({"k"}, "w1");
    ASSERT_TRUE(claimed.ok()) << claimed.error().ToString();
    ASSERT_TRUE(claimed->has_value());
    EXPECT_EQ((*claimed)->state, JobState::kRunning);
    EXPECT_EQ((*claimed)->attempts, 1);
    EXPECT_EQ((*claimed)->worker, "w1");
    EXPECT_EQ((*claimed)->started_at, now_ms_.load());
    order.push_back((*claimed)->id);
  }
  EXPECT_EQ(order, (std::vector<std::string>{third->id, first->id, second->id}));
  EXPECT_FALSE(queue_->Claim({"k"}, "w1")->has_value());
  EXPECT_FALSE(queue_->Claim({}, "w1")->has_value());
  EXPECT_EQ((*queue_->Claim({"nothing", "other"}, "w1"))->id, other->id);
}

TEST_P(JobQueueTest, ProgressCheckpointAndSuccess) {
  auto id = queue_->Enqueue("k", Payload(1))->id;
  auto job = **queue_->Claim({"k"}, "w1");
  EXPECT_EQ(*queue_->LoadCheckpoint(job), std::nullopt);

  auto cancel = queue_->ReportProgress(id, "w1", "prune", 42.5);
  ASSERT_TRUE(cancel.ok()) << cancel.error().ToString();
  EXPECT_FALSE(*cancel);
  ASSERT_TRUE(queue_->ReportProgress(id, "w1", "clamped", 250).ok());
  EXPECT_DOUBLE_EQ(queue_->Get(id)->percent, 100.0);
  ASSERT_TRUE(queue_->ReportProgress(id, "w1", "prune", 42.5).ok());

  ASSERT_TRUE(queue_->SaveCheckpoint(id, "w1", "weights after epoch 1").ok());
  auto stored = queue_->Get(id);
  EXPECT_EQ(stored->phase, "prune");
  EXPECT_DOUBLE_EQ(stored->percent, 42.5);
  ASSERT_TRUE(stored->checkpoint_sha256.has_value());
  EXPECT_EQ(**queue_->LoadCheckpoint(*stored), "weights after epoch 1");

  // A worker that does not own the job cannot touch it.
  EXPECT_EQ(queue_->ReportProgress(id, "w2", "x", 1).error().code, "job_not_running");
  EXPECT_EQ(queue_->Succeed(id, "w2", {}).error().code, "job_not_running");
  EXPECT_FALSE(queue_->SaveCheckpoint(id, "w2", "y").ok());

  now_ms_ += 5000;
  ASSERT_TRUE(queue_->Succeed(id, "w1", boost::json::object{{"variant_id", "var-1"}}).ok());
  auto done = queue_->Get(id);
  EXPECT_EQ(done->state, JobState::kSucceeded);
  EXPECT_EQ(done->result.at("variant_id").as_string(), "var-1");
  EXPECT_DOUBLE_EQ(done->percent, 100.0);
  EXPECT_EQ(done->finished_at, now_ms_.load());
  EXPECT_FALSE(queue_->Succeed(id, "w1", {}).ok());  // only once
}

TEST_P(JobQueueTest, TransientFailuresRetryWithBackoffUntilAttemptsRunOut) {
  auto id = queue_->Enqueue("k", Payload(1))->id;  // max_attempts 3, base 1000 ms
  const Error transient = MakeError(ErrorKind::kUnavailable, "dataset_busy", "try later");
  ASSERT_TRUE(queue_->Claim({"k"}, "w1")->has_value());
  ASSERT_TRUE(queue_->Fail(id, "w1", transient).ok());
  auto job = queue_->Get(id);
  EXPECT_EQ(job->state, JobState::kQueued);
  EXPECT_EQ(job->not_before, now_ms_.load() + 1000);
  EXPECT_EQ(job->error, "dataset_busy: try later");

  EXPECT_FALSE(queue_->Claim({"k"}, "w1")->has_value());  // backoff not over
  now_ms_ += 1000;
  ASSERT_TRUE(queue_->Claim({"k"}, "w1")->has_value());
  ASSERT_TRUE(queue_->Fail(id, "w1", transient).ok());
  EXPECT_EQ(queue_->Get(id)->not_before, now_ms_.load() + 2000);  // doubled
  now_ms_ += 2000;
  auto third = queue_->Claim({"k"}, "w1");
  ASSERT_TRUE(third->has_value());
  EXPECT_EQ((*third)->attempts, 3);
  ASSERT_TRUE(queue_->Fail(id, "w1", transient).ok());
  EXPECT_EQ(StateOf(id), JobState::kFailed);

  auto permanent = queue_->Enqueue("k", Payload(2))->id;
  ASSERT_TRUE(queue_->Claim({"k"}, "w1")->has_value());
  ASSERT_TRUE(queue_->Fail(permanent, "w1",
                           MakeError(ErrorKind::kFailedPrecondition, "budget_unmeetable", "no"))
                  .ok());
  auto failed = queue_->Get(permanent);
  EXPECT_EQ(failed->state, JobState::kFailed);
  EXPECT_EQ(failed->attempts, 1);
  EXPECT_EQ(failed->error, "budget_unmeetable: no");
}

TEST_P(JobQueueTest, CancelQueuedRunningAndFinishedJobs) {
  auto queued = queue_->Enqueue("k", Payload(1))->id;
  auto cancelled = queue_->Cancel(queued);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  EXPECT_FALSE(queue_->Claim({"k"}, "w1")->has_value());
  EXPECT_EQ(queue_->Cancel(queued).error().code, "job_finished");
  EXPECT_EQ(queue_->Cancel("job-ffffffffffffffff").error().kind, ErrorKind::kNotFound);

  auto running = queue_->Enqueue("k", Payload(2))->id;
  ASSERT_TRUE(queue_->Claim({"k"}, "w1")->has_value());
  auto requested = queue_->Cancel(running);
  ASSERT_TRUE(requested.ok());
  EXPECT_EQ(requested->state, JobState::kRunning);
  EXPECT_TRUE(requested->cancel_requested);
  EXPECT_TRUE(*queue_->ReportProgress(running, "w1", "tune", 50));
  ASSERT_TRUE(queue_->MarkCancelled(running, "w1").ok());
  EXPECT_EQ(StateOf(running), JobState::kCancelled);
}

TEST_P(JobQueueTest, DedupeKeyReturnsTheActiveJob) {
  EnqueueOptions keyed;
  keyed.dedupe_key = "variant:mdl-1:bucket-a";
  auto first = queue_->Enqueue("k", Payload(1), keyed);
  auto again = queue_->Enqueue("k", Payload(2), keyed);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->id, first->id);
  EXPECT_EQ(queue_->List()->size(), 1u);

  ASSERT_TRUE(queue_->Claim({"k"}, "w1")->has_value());
  ASSERT_TRUE(queue_->Succeed(first->id, "w1", {}).ok());
  auto after = queue_->Enqueue("k", Payload(3), keyed);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->created);
  EXPECT_NE(after->id, first->id);
}

TEST_P(JobQueueTest, ConcurrentClaimsTakeEachJobExactlyOnce) {
  constexpr int kJobs = 40;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(queue_->Enqueue("k", Payload(i)).ok());
  std::vector<std::vector<std::string>> claimed(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string worker = "w" + std::to_string(t);
      for (;;) {
        auto job = queue_->Claim({"k"}, worker);
        if (!job.ok()) {
          ADD_FAILURE() << job.error().ToString();
          return;
        }
        if (!job->has_value()) return;
        claimed[t].push_back((*job)->id);
        EXPECT_TRUE(queue_->Succeed((*job)->id, worker, {}).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  ExpectEachJobClaimedOnce(claimed, kJobs);
}

// A real process claims a job, saves a checkpoint and dies. The next start recovers it.
TEST_P(JobQueueTest, RecoveryRequeuesJobsOfADeadProcessWithTheirCheckpoint) {
  auto resumable = queue_->Enqueue("k", Payload(1))->id;
  EnqueueOptions one_shot;
  one_shot.max_attempts = 1;
  auto last_attempt = queue_->Enqueue("k", Payload(2), one_shot)->id;
  auto cancel_me = queue_->Enqueue("k", Payload(3))->id;

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child uses only its own handles and leaves with _exit: no test teardown runs here.
    auto location = store::ParseStoreUrl(Backend().url(), dir_.path());
    if (!location.ok()) ::_exit(10);
    auto db = store::OpenStore(*location, {});
    if (!db.ok()) ::_exit(10);
    JobQueue queue(**db, blobs_.get(), {});
    for (int i = 0; i < 3; ++i) {
      auto job = queue.Claim({"k"}, "doomed-worker");
      if (!job.ok() || !job->has_value()) ::_exit(11);
    }
    if (!queue.SaveCheckpoint(resumable, "doomed-worker", "epoch 3 of 5").ok()) ::_exit(12);
    if (!queue.ReportProgress(resumable, "doomed-worker", "fine-tune", 60).ok()) ::_exit(13);
    ::_exit(0);  // dies with three running jobs
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_TRUE(queue_->Cancel(cancel_me).ok());  // asked while its process was gone

  // "Restart": a new database handle and queue, as a fresh server process would build.
  auto db = OpenAnotherHandle();
  auto queue = MakeQueue(*db);
  auto recovered = queue->RecoverAbandoned();
  ASSERT_TRUE(recovered.ok()) << recovered.error().ToString();
  EXPECT_EQ(*recovered, 1);
  EXPECT_EQ(queue->Get(last_attempt)->state, JobState::kFailed);
  EXPECT_NE(queue->Get(last_attempt)->error.find("abandoned"), std::string::npos);
  EXPECT_EQ(queue->Get(cancel_me)->state, JobState::kCancelled);

  auto again = queue->Claim({"k"}, "new-worker");
  ASSERT_TRUE(again.ok() && again->has_value());
  const Job& job = **again;
  EXPECT_EQ(job.id, resumable);
  EXPECT_EQ(job.attempts, 2);
  EXPECT_EQ(job.phase, "fine-tune");
  EXPECT_EQ(**queue->LoadCheckpoint(job), "epoch 3 of 5");
  // The dead worker's name no longer owns it.
  EXPECT_FALSE(queue->Succeed(resumable, "doomed-worker", {}).ok());
  EXPECT_TRUE(queue->Succeed(resumable, "new-worker", {}).ok());
  EXPECT_EQ(*queue->RecoverAbandoned(), 0);
}

EDGEPRUNE_STORE_BACKENDS(JobQueueTest);

}  // namespace
}  // namespace edgeprune::jobs
