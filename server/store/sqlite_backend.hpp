#pragma once
// The SQLite backend of store::Database: one file, WAL, foreign keys, busy timeout.
//
// Write transactions (BEGIN IMMEDIATE) are queued in-process by one WriterGate per Database so
// writers wait in order instead of spinning in SQLite's busy handler (SQLite allows one writer
// per file); busy_timeout still covers writers in other processes (e.g. a CLI command run while
// the server is up).
//
// Thread-safety: WriterGate is thread-safe; a connection is used by one thread at a time (see
// database.hpp).

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>

#include "server/store/database.hpp"

namespace edgeprune::store {

// The in-process writer queue: at most one write transaction per Database at a time.
// (A mutex + condition variable rather than std::timed_mutex, whose timed lock ThreadSanitizer
// cannot follow.)
class WriterGate {
 public:
  // True once this caller holds the gate; false after `timeout` without it.
  bool AcquireFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return !held_; })) return false;
    held_ = true;
    return true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      held_ = false;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
};

// Connections to the SQLite file `path`, sharing one WriterGate. ":memory:" is allowed (the
// caller keeps the pool at one connection).
ConnectionFactory SqliteConnections(const std::string& path, const OpenOptions& options);

// Turns a SQLite result code into an Error naming the statement and SQLite's message.
Error SqliteError(sqlite3* db, int rc, std::string_view statement);

}  // namespace edgeprune::store
