#pragma once
// Liveness of the fleet, kept in memory so a heartbeat costs no database write: each heartbeat
// updates one entry; Flush() writes the entries changed since the last flush in one transaction
// (the application runs it every few seconds and at shutdown). A device is online while its last
// heartbeat is at most offline_after_missed × interval old (3 missed intervals by default).
//
// Several server processes on one database: each one receives the heartbeats of the devices its
// connections carry, and the shared table (devices.last_seen_at) is where they meet. A flush
// never moves last_seen_at back (a device that moved to another process has a newer one there),
// and CountsFrom() counts online and offline devices from the table, so every process reports the
// same fleet as of the last flushes.
//
// Thread-safety: all methods are safe to call concurrently.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/heartbeat.hpp"
#include "edgeprune/common/clock.hpp"
#include "server/store/database.hpp"

namespace edgeprune::fleet {

enum class Liveness { kNeverSeen, kOnline, kOffline };
const char* LivenessName(Liveness l);

struct LiveState {
  std::int64_t last_seen_ms = 0;
  std::string agent_state;
  std::optional<std::string> installed_variant_id;
  std::int64_t rss_bytes = 0;
  std::int64_t uptime_s = 0;
};

struct LivenessCounts {
  std::int64_t online = 0;
  std::int64_t offline = 0;
};

class HeartbeatTracker {
 public:
  HeartbeatTracker(std::shared_ptr<const Clock> clock, std::chrono::seconds interval,
                   int offline_after_missed = 3);

  // Loads last_seen_at of every active device so a restarted server keeps its view.
  Status LoadFrom(store::Database& db);

  void Record(const std::string& device_id, const wire::Heartbeat& hb);
  void Forget(const std::string& device_id);  // a revoked device

  std::optional<LiveState> Get(const std::string& device_id) const;
  Liveness LivenessOf(const std::string& device_id) const;
  Liveness LivenessAt(std::int64_t last_seen_ms) const;
  // From this process's heartbeats only.
  LivenessCounts Counts() const;
  // From the shared table: every process's flushed heartbeats (active devices only).
  Result<LivenessCounts> CountsFrom(store::Database& db) const;

  // Writes changed entries (last_seen_at, agent_state, installed_variant) in one transaction;
  // a device whose row holds a newer heartbeat (flushed by another process) keeps it.
  Result<std::size_t> Flush(store::Database& db);

  std::chrono::seconds interval() const { return interval_; }

 private:
  std::shared_ptr<const Clock> clock_;
  std::chrono::seconds interval_;
  int offline_after_missed_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, LiveState> live_;
  std::unordered_set<std::string> dirty_;
};

}  // namespace edgeprune::fleet
