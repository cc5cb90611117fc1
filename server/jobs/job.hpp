#pragma once
// A job of the persistent queue as stored in the `jobs` table (migration 0004), its states and
// its JSON form for the operator API.
//
//   queued ──claim──▶ running ──▶ succeeded
//     ▲                  │  └───▶ failed      (non-retryable error, or attempts used up)
//     └──retry/restart───┘  └───▶ cancelled   (operator cancel; queued jobs cancel at once)
//
// Thread-safety: plain value types.

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgeprune/common/result.hpp"

namespace edgeprune::jobs {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };

const char* JobStateName(JobState state);
// "queued", "running", ... → state; "invalid_job_state" naming the text otherwise.
Result<JobState> ParseJobState(std::string_view text);
inline bool IsFinished(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled;
}

struct Job {
  std::string id;  // "job-<16 hex>"
  std::string kind;
  boost::json::object payload;
  JobState state = JobState::kQueued;
  std::int64_t priority = 0;
  std::optional<std::string> dedupe_key;
  std::string phase;
  double percent = 0.0;
  std::int64_t attempts = 0;
  std::int64_t max_attempts = 1;
  std::int64_t not_before = 0;  // epoch ms
  bool cancel_requested = false;
  std::optional<std::string> checkpoint_sha256;
  boost::json::object result;
  std::string error;
  std::string worker;       // the last worker that claimed it (kept after it finishes)
  std::string lease_owner;  // while running: the worker whose lease it is; '' otherwise
  std::int64_t lease_expires_ms = 0;  // epoch ms; past it, any worker may take the job back
  std::int64_t created_at = 0;  // epoch ms
  std::int64_t updated_at = 0;
  std::optional<std::int64_t> started_at;
  std::optional<std::int64_t> finished_at;
};

// {"id", "kind", "state", "phase", "percent", "attempts", ...}; times in epoch ms.
boost::json::object JobToJson(const Job& job);

}  // namespace edgeprune::jobs
