#include "server/store/task_lease.hpp"

#include <unistd.h>

#include "edgeprune/common/crypto.hpp"

namespace edgeprune::store {

TaskLeases::TaskLeases(Database& db, std::string owner, std::shared_ptr<const Clock> clock)
    : db_(db), owner_(std::move(owner)), clock_(std::move(clock)) {
  if (!clock_) clock_ = std::make_shared<SystemClock>();
}

Result<bool> TaskLeases::Hold(std::string_view task, std::chrono::milliseconds ttl) {
  if (task.empty() || task.size() > 64) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_task_name",
                     "a task lease name must be 1-64 characters");
  }
  // One statement decides: insert the lease, or update it when it is ours or has expired. Both
  // backends lock the conflicting row and re-check the WHERE on its latest version, so two
  // processes racing for an expired lease cannot both win.
  return db_.WithRowLockedTransaction([&](Connection& conn) -> Result<bool> {
    const std::int64_t now = clock_->NowMs();
    EP_ASSIGN_OR_RETURN(
        std::int64_t changed,
        conn.Execute("hold_task_lease",
                     "INSERT INTO task_leases (name, owner, expires_ms) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
                     "expires_ms = excluded.expires_ms "
                     "WHERE task_leases.owner = excluded.owner OR task_leases.expires_ms < ?4",
                     task, owner_, now + ttl.count(), now));
    return changed > 0;
  });
}

Status TaskLeases::Release(std::string_view task) {
  EP_ASSIGN_OR_RETURN(ConnectionLease lease, db_.Acquire());
  EP_ASSIGN_OR_RETURN(std::int64_t changed,
                      lease->Execute("release_task_lease",
                                     "DELETE FROM task_leases WHERE name = ? AND owner = ?", task,
                                     owner_));
  (void)changed;  // not holding it is fine: nothing to give up
  return Ok();
}

std::string TaskLeases::ProcessOwner() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "unknown-host") + "/pid" +
         std::to_string(::getpid()) + "-" + crypto::Sha256Hex(crypto::RandomToken(8)).substr(0, 6);
}

}  // namespace edgeprune::store
