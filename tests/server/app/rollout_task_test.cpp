// The rollout task of two server processes ("replicas") on one database, each with its own
// handle and task lease owner: only the holder of the "rollouts" lease steps rollouts; the lease
// moves when the holder stops cleanly (at once) or stops renewing (after three ticks).
#include <gtest/gtest.h>

#include "server/app/rollout_task.hpp"
#include "support/store_backends.hpp"

namespace edgeprune::server {
namespace {

using std::chrono::milliseconds;

class RolloutTaskLeaseTest : public edgeprune::testing::StoreBackendTest {
 protected:
  std::unique_ptr<RolloutTask> Replica(const std::string& owner) {
    auto db = dbs_.emplace_back(dbs_.empty() ? OpenDatabase() : Backend().Open(false));
    EXPECT_NE(db, nullptr);
    auto rollouts = std::make_shared<deploy::RolloutService>(
        db, [](const catalog::VariantRecord&) {}, clock_);
    return std::make_unique<RolloutTask>(rollouts, nullptr, kTick,
                                         std::make_shared<store::TaskLeases>(*db, owner, clock_));
  }

  static constexpr milliseconds kTick{5'000};
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>(1'700'000'000'000);
  std::vector<std::shared_ptr<store::Database>> dbs_;
};

TEST_P(RolloutTaskLeaseTest, OnlyOneReplicaStepsAndTheLeaseMovesWhenItStops) {
  auto a = Replica("host-a/pid1-aaaaaa");
  auto b = Replica("host-b/pid2-bbbbbb");
  for (int tick = 0; tick < 6; ++tick) {
    EXPECT_TRUE(a->RunOnce()) << tick;
    EXPECT_FALSE(b->RunOnce()) << tick;
    clock_->Advance(kTick);
  }
  // A hangs (no ticks, no release): B takes over three ticks after A's last renewal.
  clock_->Advance(2 * kTick - milliseconds(1));  // 3 ticks - 1 ms since A's last tick
  EXPECT_FALSE(b->RunOnce());
  clock_->Advance(milliseconds(2));
  EXPECT_TRUE(b->RunOnce());
  EXPECT_FALSE(a->RunOnce()) << "A is back, but B holds the lease now";
  // B stops cleanly: A takes over at its next tick.
  b->Stop();
  EXPECT_TRUE(a->RunOnce());
}

EDGEPRUNE_STORE_BACKENDS(RolloutTaskLeaseTest);

}  // namespace
}  // namespace edgeprune::server
