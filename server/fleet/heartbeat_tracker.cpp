#include "server/fleet/heartbeat_tracker.hpp"

#include <vector>

namespace edgeprune::fleet {

const char* LivenessName(Liveness l) {
  switch (l) {
    case Liveness::kNeverSeen: return "never_seen";
    case Liveness::kOnline: return "online";
    case Liveness::kOffline: return "offline";
  }
  return "offline";
}

HeartbeatTracker::HeartbeatTracker(std::shared_ptr<const Clock> clock,
                                   std::chrono::seconds interval, int offline_after_missed)
    : clock_(std::move(clock)), interval_(interval), offline_after_missed_(offline_after_missed) {}

Status HeartbeatTracker::LoadFrom(store::Database& db) {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db.Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("devices_last_seen",
                                   "SELECT id, last_seen_at, agent_state, installed_variant "
                                   "FROM devices WHERE status = 'active' AND last_seen_at IS NOT NULL"));
  std::lock_guard lock(mu_);
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    LiveState st;
    st.last_seen_ms = s.Int64(1);
    st.agent_state = s.Text(2);
    st.installed_variant_id = s.OptText(3);
    live_[s.Text(0)] = std::move(st);
  }
  return Ok();
}

void HeartbeatTracker::Record(const std::string& device_id, const wire::Heartbeat& hb) {
  const std::int64_t now = clock_->NowMs();
  std::lock_guard lock(mu_);
  LiveState& st = live_[device_id];
  st.last_seen_ms = now;
  st.agent_state = hb.agent_state;
  st.installed_variant_id = hb.installed_variant_id;
  st.rss_bytes = hb.rss_bytes;
  st.uptime_s = hb.uptime_s;
  dirty_.insert(device_id);
}

void HeartbeatTracker::Forget(const std::string& device_id) {
  std::lock_guard lock(mu_);
  live_.erase(device_id);
  dirty_.erase(device_id);
}

std::optional<LiveState> HeartbeatTracker::Get(const std::string& device_id) const {
  std::lock_guard lock(mu_);
  auto it = live_.find(device_id);
  if (it == live_.end()) return std::nullopt;
  return it->second;
}

Liveness HeartbeatTracker::LivenessAt(std::int64_t last_seen_ms) const {
  if (last_seen_ms <= 0) return Liveness::kNeverSeen;
  const std::int64_t limit_ms =
      static_cast<std::int64_t>(offline_after_missed_) * interval_.count() * 1000;
  return clock_->NowMs() - last_seen_ms <= limit_ms ? Liveness::kOnline : Liveness::kOffline;
}

Liveness HeartbeatTracker::LivenessOf(const std::string& device_id) const {
  auto st = Get(device_id);
  return st ? LivenessAt(st->last_seen_ms) : Liveness::kNeverSeen;
}

LivenessCounts HeartbeatTracker::Counts() const {
  LivenessCounts c;
  std::lock_guard lock(mu_);
  for (const auto& [id, st] : live_) {
    if (LivenessAt(st.last_seen_ms) == Liveness::kOnline) ++c.online;
    else ++c.offline;
  }
  return c;
}

Result<LivenessCounts> HeartbeatTracker::CountsFrom(store::Database& db) const {
  const std::int64_t limit_ms =
      static_cast<std::int64_t>(offline_after_missed_) * interval_.count() * 1000;
  const std::int64_t online_since = clock_->NowMs() - limit_ms;  // LivenessAt's boundary
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db.Acquire());
  EP_ASSIGN_OR_RETURN(
      store::Statement s,
      lease->Query("devices_liveness_counts",
                   "SELECT COALESCE(SUM(CASE WHEN last_seen_at >= ?1 THEN 1 ELSE 0 END), 0), "
                   "COALESCE(SUM(CASE WHEN last_seen_at < ?1 THEN 1 ELSE 0 END), 0) "
                   "FROM devices WHERE status = 'active' AND last_seen_at IS NOT NULL",
                   online_since));
  EP_ASSIGN_OR_RETURN(bool row, s.Step());
  LivenessCounts c;
  if (row) {
    c.online = s.Int64(0);
    c.offline = s.Int64(1);
  }
  return c;
}

Result<std::size_t> HeartbeatTracker::Flush(store::Database& db) {
  std::vector<std::pair<std::string, LiveState>> batch;
  {
    std::lock_guard lock(mu_);
    batch.reserve(dirty_.size());
    for (const auto& id : dirty_) {
      auto it = live_.find(id);
      if (it != live_.end()) batch.emplace_back(id, it->second);
    }
    dirty_.clear();
  }
  if (batch.empty()) return std::size_t{0};
  auto r = db.WithTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(store::Statement s,
                        conn.Prepare("devices_flush_heartbeat",
                                     "UPDATE devices SET last_seen_at = ?1, agent_state = ?2, "
                                     "installed_variant = ?3 WHERE id = ?4 AND "
                                     "(last_seen_at IS NULL OR last_seen_at < ?1)"));
    for (const auto& [id, st] : batch) {
      EP_RETURN_IF_ERROR(s.BindAll(st.last_seen_ms, st.agent_state, st.installed_variant_id, id));
      EP_RETURN_IF_ERROR(s.Run());
      EP_RETURN_IF_ERROR(s.Reset());
    }
    return Ok();
  });
  if (!r.ok()) {
    // Keep the entries for the next flush.
    std::lock_guard lock(mu_);
    for (const auto& [id, st] : batch) dirty_.insert(id);
    return r.error();
  }
  return batch.size();
}

}  // namespace edgeprune::fleet
