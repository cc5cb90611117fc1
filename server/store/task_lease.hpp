#pragma once
// Leases on named periodic tasks (table `task_leases`, migration 0009), so that work meant to
// run once per fleet — stepping rollouts — runs in one process at a time however many server
// processes share the database. A process calls Hold() before each tick and runs the tick only
// when it returns true; Hold() renews the lease it holds, and takes the lease over once the
// holder has let it expire (stopped, crashed or lost the database). Give the lease a time to live
// of a few ticks, so one slow tick does not hand the task over, and a dead holder's task moves
// within that time.
//
//   TaskLeases leases(db, TaskLeases::ProcessOwner(), clock);
//   if (*leases.Hold("rollouts", 3 * tick)) rollouts.Tick();
//
// Thread-safety: thread-safe (each call takes its own pooled connection).

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "edgeprune/common/clock.hpp"
#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"

namespace edgeprune::store {

class TaskLeases {
 public:
  // `owner` names this process in the table (unique per process start); `clock` may be null
  // (the system clock).
  TaskLeases(Database& db, std::string owner, std::shared_ptr<const Clock> clock = nullptr);

  // True when this owner holds `task`'s lease until now + ttl: it held it already (renewed), or
  // nobody did, or the holder's lease has expired (taken over). False while another owner holds
  // it; an error when the database could not be asked (the caller then skips the tick).
  Result<bool> Hold(std::string_view task, std::chrono::milliseconds ttl);
  // Gives the lease up when this owner holds it, so another process takes over at its next tick
  // instead of after the lease expires.
  Status Release(std::string_view task);

  const std::string& owner() const { return owner_; }
  // "<hostname>/pid<pid>-<6 random hex>": names the process, unique per start.
  static std::string ProcessOwner();

 private:
  Database& db_;
  std::string owner_;
  std::shared_ptr<const Clock> clock_;
};

}  // namespace edgeprune::store
