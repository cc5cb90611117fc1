#include "server/jobs/worker_pool.hpp"

#include <future>
#include <mutex>

#include "server/support/jobs_fixture.hpp"

namespace edgeprune::jobs {
namespace {

using JobWorkerPoolTest = JobsFixture;

WorkerPoolOptions Options(int threads = 2) {
  WorkerPoolOptions options;
  options.threads = threads;
  options.poll_interval = std::chrono::milliseconds(20);
  return options;
}

TEST_P(JobWorkerPoolTest, RunsRegisteredHandlersToSuccess) {
  WorkerPool pool(*queue_, Options());
  ASSERT_TRUE(pool.Register("square", [](JobContext& ctx) -> Result<boost::json::object> {
                    EP_RETURN_IF_ERROR(ctx.Progress("computing", 50));
                    const std::int64_t n = ctx.payload().at("n").as_int64();
                    return boost::json::object{{"square", n * n}};
                  }).ok());
  ASSERT_TRUE(pool.Start().ok());
  std::vector<std::string> ids;
  for (int i = 1; i <= 5; ++i) {
    ids.push_back(queue_->Enqueue("square", boost::json::object{{"n", i}})->id);
  }
  auto unhandled = queue_->Enqueue("unregistered", {})->id;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(WaitUntil([&] { return StateOf(ids[i]) == JobState::kSucceeded; })) << i;
    auto job = queue_->Get(ids[i]);
    EXPECT_EQ(job->result.at("square").as_int64(), (i + 1) * (i + 1));
    EXPECT_EQ(job->phase, "computing");
    EXPECT_EQ(job->attempts, 1);
  }
  pool.Stop();
  EXPECT_EQ(StateOf(unhandled), JobState::kQueued);
}

TEST_P(JobWorkerPoolTest, EveryAttemptEndIsReportedWithItsOutcome) {
  std::mutex mu;
  std::vector<std::string> ends;
  WorkerPoolOptions options = Options(1);
  options.on_attempt_end = [&](const std::string& kind, const char* outcome, double seconds) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_GE(seconds, 0.0);
    ends.push_back(kind + ":" + outcome);
  };
  WorkerPool pool(*queue_, options);
  ASSERT_TRUE(pool.Register("work", [](JobContext& ctx) -> Result<boost::json::object> {
                    if (ctx.payload().at("ok").as_bool()) return boost::json::object{};
                    return MakeError(ErrorKind::kInvalidArgument, "bad_input", "permanent");
                  }).ok());
  ASSERT_TRUE(pool.Start().ok());
  auto good = queue_->Enqueue("work", boost::json::object{{"ok", true}})->id;
  ASSERT_TRUE(WaitUntil([&] { return StateOf(good) == JobState::kSucceeded; }));
  auto bad = queue_->Enqueue("work", boost::json::object{{"ok", false}})->id;
  ASSERT_TRUE(WaitUntil([&] { return StateOf(bad) == JobState::kFailed; }));
  pool.Stop();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(ends, (std::vector<std::string>{"work:succeeded", "work:failed"}));
}

TEST_P(JobWorkerPoolTest, OperatorCancelStopsARunningHandler) {
  WorkerPool pool(*queue_, Options(1));
  std::promise<void> started;
  ASSERT_TRUE(pool.Register("long", [&](JobContext& ctx) -> Result<boost::json::object> {
                    started.set_value();
                    while (!ctx.token().WaitFor(std::chrono::milliseconds(50))) {
                    }
                    return ctx.Check().error();
                  }).ok());
  ASSERT_TRUE(pool.Start().ok());
  auto id = queue_->Enqueue("long", {})->id;
  started.get_future().wait();
  EXPECT_EQ(pool.RunningJobIds(), std::vector<std::string>{id});
  ASSERT_TRUE(queue_->Cancel(id).ok());
  ASSERT_TRUE(WaitUntil([&] { return StateOf(id) == JobState::kCancelled; }));
  EXPECT_EQ(queue_->Get(id)->error, "cancelled by operator");
}

TEST_P(JobWorkerPoolTest, CancelFromAnotherProcessIsSeenAtTheNextProgressReport) {
  WorkerPool pool(*queue_, Options(1));
  std::promise<void> started;
  std::atomic<bool> go{false};
  ASSERT_TRUE(pool.Register("steps", [&](JobContext& ctx) -> Result<boost::json::object> {
                    started.set_value();
                    while (!go) std::this_thread::yield();
                    for (int step = 0; step < 100; ++step) {
                      EP_RETURN_IF_ERROR(ctx.Progress("step", step));
                    }
                    return boost::json::object{};
                  }).ok());
  ASSERT_TRUE(pool.Start().ok());
  auto id = queue_->Enqueue("steps", {})->id;
  started.get_future().wait();
  // A second queue on its own database handle, with no observer: only the row changes.
  auto other_db = OpenAnotherHandle();
  auto other = MakeQueue(*other_db);
  ASSERT_TRUE(other->Cancel(id).ok());
  go = true;
  ASSERT_TRUE(WaitUntil([&] { return StateOf(id) == JobState::kCancelled; }));
}

TEST_P(JobWorkerPoolTest, StopRequeuesAndTheNextStartResumesFromTheCheckpoint) {
  auto id = queue_->Enqueue("train", {})->id;
  {
    WorkerPool pool(*queue_, Options(1));
    std::promise<void> checkpointed;
    ASSERT_TRUE(pool.Register("train", [&](JobContext& ctx) -> Result<boost::json::object> {
                      EP_RETURN_IF_ERROR(ctx.Progress("epoch", 40));
                      EP_RETURN_IF_ERROR(ctx.SaveCheckpoint("epoch=2"));
                      checkpointed.set_value();
                      ctx.token().WaitFor(std::chrono::minutes(5));  // until Stop()
                      return ctx.Check().error();
                    }).ok());
    ASSERT_TRUE(pool.Start().ok());
    checkpointed.get_future().wait();
    pool.Stop();
  }
  auto interrupted = queue_->Get(id);
  EXPECT_EQ(interrupted->state, JobState::kQueued);
  EXPECT_EQ(interrupted->attempts, 0);  // a shutdown does not use up an attempt
  ASSERT_TRUE(interrupted->checkpoint_sha256.has_value());

  WorkerPool restarted(*queue_, Options(1));
  std::string resumed_from;
  ASSERT_TRUE(restarted.Register("train", [&](JobContext& ctx) -> Result<boost::json::object> {
                         EP_ASSIGN_OR_RETURN(auto checkpoint, ctx.LoadCheckpoint());
                         resumed_from = checkpoint.value_or("none");
                         return boost::json::object{{"epochs", 5}};
                       }).ok());
  ASSERT_TRUE(restarted.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return StateOf(id) == JobState::kSucceeded; }));
  restarted.Stop();
  EXPECT_EQ(resumed_from, "epoch=2");
  EXPECT_EQ(queue_->Get(id)->attempts, 1);
}

TEST_P(JobWorkerPoolTest, TransientErrorsRetryPermanentErrorsAndThrowsFail) {
  auto queue = MakeQueue(*db_, /*retry_base_ms=*/0);
  WorkerPool pool(*queue, Options(2));
  std::atomic<int> flaky_calls{0};
  ASSERT_TRUE(pool.Register("flaky", [&](JobContext& ctx) -> Result<boost::json::object> {
                    if (++flaky_calls < 2) {
                      return MakeError(ErrorKind::kUnavailable, "dataset_busy", "try again");
                    }
                    return boost::json::object{{"attempt", ctx.job().attempts}};
                  }).ok());
  ASSERT_TRUE(pool.Register("doomed", [](JobContext&) -> Result<boost::json::object> {
                    return MakeError(ErrorKind::kFailedPrecondition, "budget_unmeetable",
                                     "nothing fits 1 KiB");
                  }).ok());
  ASSERT_TRUE(pool.Register("thrower", [](JobContext&) -> Result<boost::json::object> {
                    throw std::runtime_error("boom");
                  }).ok());
  ASSERT_TRUE(pool.Start().ok());
  auto flaky = queue->Enqueue("flaky", {})->id;
  auto doomed = queue->Enqueue("doomed", {})->id;
  auto thrower = queue->Enqueue("thrower", {})->id;
  ASSERT_TRUE(WaitUntil([&] {
    return queue->Get(flaky)->state == JobState::kSucceeded &&
           queue->Get(doomed)->state == JobState::kFailed &&
           queue->Get(thrower)->state == JobState::kFailed;
  }));
  pool.Stop();
  EXPECT_EQ(queue->Get(flaky)->result.at("attempt").as_int64(), 2);
  EXPECT_EQ(queue->Get(doomed)->error, "budget_unmeetable: nothing fits 1 KiB");
  EXPECT_EQ(queue->Get(doomed)->attempts, 1);
  EXPECT_NE(queue->Get(thrower)->error.find("boom"), std::string::npos);
}

TEST_P(JobWorkerPoolTest, RegistrationRules) {
  WorkerPool pool(*queue_, Options(1));
  auto handler = [](JobContext&) -> Result<boost::json::object> { return boost::json::object{}; };
  ASSERT_TRUE(pool.Register("a", handler).ok());
  EXPECT_EQ(pool.Register("a", handler).error().code, "handler_exists");
  EXPECT_EQ(pool.Register("b", nullptr).error().code, "invalid_handler");
  ASSERT_TRUE(pool.Start().ok());
  EXPECT_EQ(pool.Start().error().code, "pool_started");
  EXPECT_EQ(pool.Register("c", handler).error().code, "pool_started");
  pool.Stop();
  pool.Stop();  // idempotent
}

EDGEPRUNE_STORE_BACKENDS(JobWorkerPoolTest);

}  // namespace
}  // namespace edgeprune::jobs
