// Task leases on both backends: periodic work that runs once per fleet. Each "replica" is its own
// database handle and TaskLeases, as a second server process would have them; the clock is
// manual, so a lease expires when the test says so.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "server/store/task_lease.hpp"
#include "support/store_backends.hpp"

namespace edgeprune::store {
namespace {

using std::chrono::milliseconds;

class TaskLeaseTest : public testing::StoreBackendTest {
 protected:
  void SetUp() override {
    db_a_ = OpenDatabase();
    ASSERT_NE(db_a_, nullptr);
    db_b_ = Backend().Open(false);
    ASSERT_NE(db_b_, nullptr);
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(1'700'000'000'000);
  std::shared_ptr<Database> db_a_, db_b_;
};

constexpr milliseconds kTtl{15'000};

// One tick of a periodic task on a replica: runs the work only while holding the lease.
bool Tick(TaskLeases& leases, int* runs) {
  auto held = leases.Hold("rollouts", kTtl);
  EXPECT_TRUE(held.ok()) << held.error().ToString();
  if (!held.ok() || !*held) return false;
  ++*runs;
  return true;
}

TEST_P(TaskLeaseTest, OnlyTheHolderRunsAndTheLeaseMovesWhenItStopsRenewing) {
  TaskLeases a(*db_a_, "host-a/pid1-aaaaaa", clock_);
  TaskLeases b(*db_b_, "host-b/pid2-bbbbbb", clock_);
  int runs_a = 0, runs_b = 0;

  // Both tick every 5 s for a minute: A took the lease first and keeps it; B never runs.
  for (int tick = 0; tick < 12; ++tick) {
    EXPECT_TRUE(Tick(a, &runs_a)) << tick;
    EXPECT_FALSE(Tick(b, &runs_b)) << tick;
    clock_->Advance(milliseconds(5'000));
  }
  EXPECT_EQ(runs_a, 12);
  EXPECT_EQ(runs_b, 0);

  // A stops (crashed: no release). B takes over once A's last lease has run out, not before.
  clock_->Advance(kTtl - milliseconds(5'000));  // 15 s after A's last renewal: still A's
  EXPECT_FALSE(Tick(b, &runs_b));
  clock_->Advance(milliseconds(1));
  EXPECT_TRUE(Tick(b, &runs_b));
  EXPECT_FALSE(Tick(a, &runs_a)) << "A is back, but B holds the lease now";
  EXPECT_EQ(runs_b, 1);

  // A clean stop releases the lease: A takes over at its next tick, without waiting.
  ASSERT_TRUE(b.Release("rollouts").ok());
  EXPECT_TRUE(Tick(a, &runs_a));
  EXPECT_FALSE(Tick(b, &runs_b));
  // Releasing a lease one does not hold changes nothing.
  ASSERT_TRUE(b.Release("rollouts").ok());
  EXPECT_FALSE(Tick(b, &runs_b));

  // Leases are per task name.
  auto other = b.Hold("retention", kTtl);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(*other);
}

TEST_P(TaskLeaseTest, ReplicasRacingForAFreeOrExpiredLeaseGetExactlyOneHolder) {
  constexpr int kReplicas = 6;
  std::vector<std::shared_ptr<Database>> handles = {db_a_, db_b_};
  while (static_cast<int>(handles.size()) < kReplicas) handles.push_back(Backend().Open(false));
  for (int round = 0; round < 2; ++round) {  // a free lease, then an expired one
    std::atomic<int> holders{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < kReplicas; ++i) {
      threads.emplace_back([&, i] {
        TaskLeases leases(*handles[i], "replica-" + std::to_string(round) + "-" +
                                           std::to_string(i), clock_);
        while (!go.load()) std::this_thread::yield();
        auto held = leases.Hold("rollouts", kTtl);
        if (!held.ok()) {
          // A lost race may surface as busy; it is then simply not the holder this tick.
          EXPECT_EQ(held.error().kind, ErrorKind::kUnavailable) << held.error().ToString();
          return;
        }
        if (*held) ++holders;
      });
    }
    go = true;
    for (auto& t : threads) t.join();
    EXPECT_EQ(holders.load(), 1) << "round " << round;
    clock_->Advance(kTtl + milliseconds(1));
  }
}

TEST_P(TaskLeaseTest, ABadTaskNameIsRefusedAndChangesNothing) {
  TaskLeases a(*db_a_, "host-a/pid1-aaaaaa", clock_);
  for (const std::string& name : {std::string(), std::string(65, 'x')}) {
    auto held = a.Hold(name, kTtl);
    ASSERT_FALSE(held.ok());
    EXPECT_EQ(held.error().code, "invalid_task_name");
  }
  auto lease = db_a_->Acquire();
  ASSERT_TRUE(lease.ok());
  auto count = (*lease)->Query("count_leases", "SELECT COUNT(*) FROM task_leases");
  ASSERT_TRUE(count.ok() && *count->Step());
  EXPECT_EQ(count->Int64(0), 0);
}

TEST(TaskLeaseOwner, NamesTheProcessAndDiffersPerStart) {
  const std::string a = TaskLeases::ProcessOwner();
  const std::string b = TaskLeases::ProcessOwner();
  EXPECT_NE(a, b);
  EXPECT_NE(a.find("/pid" + std::to_string(::getpid()) + "-"), std::string::npos) << a;
}

EDGEPRUNE_STORE_BACKENDS(TaskLeaseTest);

}  // namespace
}  // namespace edgeprune::store
