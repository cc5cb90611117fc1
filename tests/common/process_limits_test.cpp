#include "edgeprune/common/process_limits.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace edgeprune {
namespace {

TEST(RaiseOpenFileLimit, RaisesTheSoftLimitToTheHardLimit) {
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max == RLIM_INFINITY || original.rlim_max < 128) {
    GTEST_SKIP() << "needs a finite hard RLIMIT_NOFILE of at least 128";
  }
  rlimit lowered = original;
  lowered.rlim_cur = 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);

  auto raised = RaiseOpenFileLimit();
  ASSERT_TRUE(raised.ok()) << raised.error().ToString();
  EXPECT_EQ(raised->soft_before, 64u);
  EXPECT_EQ(raised->soft, original.rlim_max);
  EXPECT_EQ(raised->hard, original.rlim_max);
  rlimit now{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, original.rlim_max);

  // Already at the hard limit: nothing changes.
  auto again = RaiseOpenFileLimit();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->soft_before, original.rlim_max);
  EXPECT_EQ(again->soft, original.rlim_max);

  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
}

}  // namespace
}  // namespace edgeprune
