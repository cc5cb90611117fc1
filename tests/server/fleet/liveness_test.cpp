// Liveness with several server processes on one database, on both backends. Each "replica" is
// its own database handle and HeartbeatTracker, as a second server process has them; the clock
// is manual and shared, so heartbeats age when the test says so.
#include <gtest/gtest.h>

#include "server/fleet/heartbeat_tracker.hpp"
#include "support/store_backends.hpp"

namespace edgeprune::fleet {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::int64_t kStart = 1'700'000'000'000;

class LivenessTest : public testing::StoreBackendTest {
 protected:
  void SetUp() override {
    db_a_ = OpenDatabase();
    ASSERT_NE(db_a_, nullptr);
    db_b_ = Backend().Open(false);
    ASSERT_NE(db_b_, nullptr);
    for (const char* id : {"dev-1", "dev-2", "dev-3"}) {
      auto lease = db_a_->Acquire();
      ASSERT_TRUE(lease.ok());
      auto inserted =
          (*lease)->Execute("test_device", "INSERT INTO devices (id, enrolled_at) VALUES (?, ?)",
                            std::string(id), kStart);
      ASSERT_TRUE(inserted.ok()) << inserted.error().ToString();
    }
  }

  static wire::Heartbeat Beat(const std::string& state, const std::string& variant) {
    wire::Heartbeat hb;
    hb.agent_state = state;
    hb.installed_variant_id = variant;
    return hb;
  }

  std::int64_t LastSeen(const std::string& id) {
    auto lease = db_a_->Acquire();
    auto s = (*lease)->Query("test_last_seen",
                             "SELECT last_seen_at, agent_state FROM devices WHERE id = ?", id);
    EXPECT_TRUE(s.ok());
    auto row = s->Step();
    EXPECT_TRUE(row.ok() && *row);
    last_state_ = s->Text(1);
    return s->OptInt64(0).value_or(0);
  }

  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(kStart);
  std::shared_ptr<store::Database> db_a_, db_b_;
  // 10 s interval, offline after 3 missed: online while the last heartbeat is ≤ 30 s old.
  HeartbeatTracker a_{clock_, seconds(10), 3};
  HeartbeatTracker b_{clock_, seconds(10), 3};
  std::string last_state_;
};

TEST_P(LivenessTest, EveryReplicaCountsTheSameFleetFromTheSharedTable) {
  // dev-1 heartbeats through A, dev-2 through B; dev-3 never.
  a_.Record("dev-1", Beat("serve", "var-1"));
  b_.Record("dev-2", Beat("serve", "var-1"));
  // Before the flushes, each replica's own view knows one device; the table knows none.
  EXPECT_EQ(a_.Counts().online, 1);
  auto before = b_.CountsFrom(*db_b_);
  ASSERT_TRUE(before.ok()) << before.error().ToString();
  EXPECT_EQ(before->online, 0);

  ASSERT_TRUE(a_.Flush(*db_a_).ok());
  ASSERT_TRUE(b_.Flush(*db_b_).ok());
  for (HeartbeatTracker* replica : {&a_, &b_}) {
    auto counts = replica->CountsFrom(replica == &a_ ? *db_a_ : *db_b_);
    ASSERT_TRUE(counts.ok()) << counts.error().ToString();
    EXPECT_EQ(counts->online, 2);
    EXPECT_EQ(counts->offline, 0);
  }

  // dev-2 keeps heartbeating through B; dev-1 stops. 31 s later dev-1 is offline for both.
  clock_->Advance(seconds(25));
  b_.Record("dev-2", Beat("serve", "var-1"));
  ASSERT_TRUE(b_.Flush(*db_b_).ok());
  clock_->Advance(seconds(6));
  for (HeartbeatTracker* replica : {&a_, &b_}) {
    auto counts = replica->CountsFrom(replica == &a_ ? *db_a_ : *db_b_);
    ASSERT_TRUE(counts.ok());
    EXPECT_EQ(counts->online, 1);
    EXPECT_EQ(counts->offline, 1);
  }

  // A revoked device is neither online nor offline.
  {
    auto lease = db_a_->Acquire();
    ASSERT_TRUE((*lease)
                    ->Execute("test_revoke", "UPDATE devices SET status = 'revoked' WHERE id = ?",
                              std::string("dev-1"))
                    .ok());
  }
  auto after = a_.CountsFrom(*db_a_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->online, 1);
  EXPECT_EQ(after->offline, 0);
}

TEST_P(LivenessTest, AFlushNeverMovesADevicesLastHeartbeatBack) {
  // dev-1 heartbeats through A, then moves to B (its connection was balanced elsewhere) and
  // heartbeats there; B flushes first, A's older buffered heartbeat flushes after.
  a_.Record("dev-1", Beat("download", "var-1"));
  const std::int64_t first = clock_->NowMs();
  clock_->Advance(seconds(10));
  b_.Record("dev-1", Beat("serve", "var-2"));
  const std::int64_t second = clock_->NowMs();
  ASSERT_TRUE(b_.Flush(*db_b_).ok());
  ASSERT_TRUE(a_.Flush(*db_a_).ok());
  EXPECT_EQ(LastSeen("dev-1"), second);
  EXPECT_EQ(last_state_, "serve");

  // In the other order the newer one wins as well.
  clock_->Advance(seconds(10));
  a_.Record("dev-1", Beat("serve", "var-2"));
  ASSERT_TRUE(a_.Flush(*db_a_).ok());
  EXPECT_EQ(LastSeen("dev-1"), second + 10'000);
  EXPECT_GT(second, first);
}

EDGEPRUNE_STORE_BACKENDS(LivenessTest);

}  // namespace
}  // namespace edgeprune::fleet
