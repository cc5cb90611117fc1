// RateLimiter without a network: bursts, refill, Retry-After, and the bounded key table.
#include "edgeprune/common/rate_limiter.hpp"

#include <gtest/gtest.h>

namespace edgeprune {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

TEST(RateLimiter, BurstThenOnePerPeriodWithTheWaitToTheNextToken) {
  RateLimiter limiter(6, 2);  // one token every 10 s, two at once
  const auto t0 = Clock::now();
  EXPECT_EQ(limiter.Take("a", t0), 0);
  EXPECT_EQ(limiter.Take("a", t0), 0);
  EXPECT_EQ(limiter.Take("a", t0), 10) << "empty: the next token is 10 s away";
  EXPECT_EQ(limiter.Take("b", t0), 0) << "keys are independent";
  EXPECT_EQ(limiter.Take("a", t0 + seconds(4)), 6);
  EXPECT_EQ(limiter.Take("a", t0 + seconds(10)), 0);
  EXPECT_EQ(limiter.Take("a", t0 + seconds(10)), 10);
}

TEST(RateLimiter, ZeroPerMinuteDisablesIt) {
  RateLimiter off(0, 1);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(off.Take("a"), 0);
  EXPECT_EQ(off.size(), 0u);
}

TEST(RateLimiter, TheKeyTableStaysBounded) {
  RateLimiter limiter(60, 1, 100);
  const auto t0 = Clock::now();
  for (int i = 0; i < 10'000; ++i) limiter.Take("k" + std::to_string(i), t0);
  EXPECT_LE(limiter.size(), 100u);
  // A key that just spent its budget is refused although the table churned.
  EXPECT_EQ(limiter.Take("k9999", t0), 1);
}

}  // namespace
}  // namespace edgeprune
