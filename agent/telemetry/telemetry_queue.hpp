#pragma once
// TelemetryQueue: the agent's durable outbox for telemetry reports, one SQLite file in the state
// dir (WAL, synchronous=FULL). Append() assigns the next per-device sequence number and commits
// before returning, so a report survives a crash or kill -9 the moment Append() returns. The
// sender Peek()s the oldest reports, posts them, and Ack()s up to the seq the server confirmed.
// Sequence numbers never repeat, also after every report was acked and the agent restarted:
// the high-water mark is kept in its own table.
//
// Thread-safety: all methods may be called from any thread (one connection behind a mutex).

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/telemetry.hpp"

struct sqlite3;

namespace edgeprune::agent {

class TelemetryQueue {
 public:
  // Opens (creating) the queue file. "queue_open_failed" (kIo) naming the path; a file that is
  // not a queue of ours is "queue_corrupt".
  static Result<std::unique_ptr<TelemetryQueue>> Open(const std::string& path);
  ~TelemetryQueue();
  TelemetryQueue(const TelemetryQueue&) = delete;
  TelemetryQueue& operator=(const TelemetryQueue&) = delete;

  // Stores the report with the next sequence number (its seq field is ignored) and returns it.
  Result<std::int64_t> Append(const wire::TelemetryReport& report);
  // Up to max_reports oldest reports, ascending seq.
  Result<std::vector<wire::TelemetryReport>> Peek(std::size_t max_reports) const;
  // Deletes every report with seq ≤ up_to_seq. Acking beyond the last assigned seq is refused
  // ("ack_out_of_range") so a confused server cannot make us drop reports we never sent.
  Status Ack(std::int64_t up_to_seq);

  Result<std::int64_t> Pending() const;
  Result<std::int64_t> LastSeq() const;
  const std::string& path() const { return path_; }

 private:
  TelemetryQueue(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  Status Exec(const char* sql) const;

  mutable std::mutex mu_;
  sqlite3* db_;
  std::string path_;
};

}  // namespace edgeprune::agent
