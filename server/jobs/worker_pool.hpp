#pragma once
// Worker threads that take jobs from the JobQueue and run the handler registered for their kind.
// A handler gets a JobContext: the job and its payload, progress reporting, checkpoints and a
// cancellation token. It returns a JSON result (the job succeeds) or an Error (the queue retries
// transient errors, fails the rest). When the operator cancels a running job, or the pool stops,
// the token is set; the handler should return soon (Progress() and Check() then return an error).
// A job interrupted by Stop() goes back to the queue without using up an attempt and resumes
// from its checkpoint on the next start. While a job runs, the pool renews its lease (one
// renewer thread for all of the pool's jobs); when a renewal finds the lease taken back, the
// handler is told to stop (reason kLeaseLost) and the pool writes nothing more to that job.
//
//   WorkerPool pool(queue, {.threads = 1});
//   pool.Register("build_variant", [&](JobContext& ctx) -> Result<boost::json::object> {
//     EP_ASSIGN_OR_RETURN(auto checkpoint, ctx.LoadCheckpoint());
//     EP_RETURN_IF_ERROR(ctx.Progress("prune", 10));
//     ...
//   });
//   queue.RecoverAbandoned();  // once, before the first Start, only on a one-process database
//   pool.Start();
//
// Thread-safety: Register() before Start(); Start()/Stop() from one controlling thread; the
// observer callbacks are thread-safe. Stop the pool before the queue is destroyed.

#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/jobs/cancellation.hpp"
#include "server/jobs/job.hpp"
#include "server/jobs/job_queue.hpp"

namespace edgeprune::jobs {

// Handed to a handler for the duration of one attempt; used by the handler's thread only.
class JobContext {
 public:
  JobContext(JobQueue& queue, Job job, std::string worker,
             std::shared_ptr<CancellationToken> token)
      : queue_(queue), job_(std::move(job)), worker_(std::move(worker)), token_(std::move(token)) {}

  const Job& job() const { return job_; }
  const boost::json::object& payload() const { return job_.payload; }
  const CancellationToken& token() const { return *token_; }
  bool stop_requested() const { return token_->stop_requested(); }
  // Ok while the job should go on; the token's error once it should stop.
  Status Check() const { return token_->Check(); }

  // Records phase and percent (0-100); also notices a cancel requested by another process.
  // Returns an error when the handler should stop.
  Status Progress(std::string_view phase, double percent);
  // Saves resumable state; a later attempt gets it from LoadCheckpoint().
  Status SaveCheckpoint(std::string_view bytes);
  // The latest checkpoint of this job (from an earlier attempt or this one), or nullopt.
  Result<std::optional<std::string>> LoadCheckpoint();

 private:
  Error LostLeaseOr(Error error);

  JobQueue& queue_;
  Job job_;
  std::string worker_;
  std::shared_ptr<CancellationToken> token_;
};

using JobHandler = std::function<Result<boost::json::object>(JobContext&)>;

struct WorkerPoolOptions {
  int threads = 1;
  // How often idle workers look for jobs enqueued by other processes or whose backoff ended;
  // jobs enqueued through this process's queue wake them at once.
  std::chrono::milliseconds poll_interval{1000};
  // How often running jobs' leases are renewed; 0: a third of the queue's lease_ms, so two
  // renewals can fail (a slow database) before the lease runs out.
  std::chrono::milliseconds lease_renew_interval{0};
  // Told when an attempt ends, from the worker's thread: the job's kind, how the attempt ended
  // ("succeeded", "failed", "cancelled", "interrupted") and how long the handler ran. For metrics
  // (build durations on the dashboard); may be empty.
  std::function<void(const std::string& kind, const char* outcome, double seconds)> on_attempt_end;
};

class WorkerPool : public JobQueueObserver {
 public:
  WorkerPool(JobQueue& queue, WorkerPoolOptions options = {});
  ~WorkerPool() override;
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // One handler per kind; before Start().
  Status Register(std::string kind, JobHandler handler);
  Status Start();
  // Asks running handlers to stop, waits for them; their jobs return to the queue.
  void Stop();

  std::vector<std::string> RunningJobIds() const;

  void OnEnqueued() override;
  void OnCancelRequested(const std::string& job_id) override;

 private:
  void WorkerLoop(int index);
  void RunJob(Job job, const std::string& worker);
  void RenewLoop();
  void RenewRunning();

  struct Running {
    std::string worker;
    std::shared_ptr<CancellationToken> token;
  };

  JobQueue& queue_;
  WorkerPoolOptions options_;
  std::string worker_prefix_;
  std::map<std::string, JobHandler> handlers_;
  std::vector<std::string> kinds_;
  std::vector<std::thread> threads_;
  std::thread renewer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  bool renewer_stop_ = false;
  std::uint64_t wake_seq_ = 0;
  std::map<std::string, Running> running_;
};

}  // namespace edgeprune::jobs
