#include "edgeprune/common/result.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "edgeprune/common/log.hpp"

namespace edgeprune {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return MakeError(ErrorKind::kInvalidArgument, "odd", std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  EP_ASSIGN_OR_RETURN(int h, Half(x));
  EP_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  EP_RETURN_IF_ERROR(Half(x));
  return Ok();
}

TEST(ResultTest, ValueAndErrorPaths) {
  auto ok = Quarter(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(*ok, 2);
  auto bad = Quarter(6);  // 6 → 3 → odd
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "odd");
  EXPECT_EQ(bad.error().message, "3 is odd");
  EXPECT_EQ(bad.value_or(-1), -1);
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).error().ToString(), "odd: 5 is odd");
}

TEST(ResultTest, MoveOnlyValuesAndContext) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(5));
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 5);
  Error e = MakeError(ErrorKind::kIo, "read_failed", "disk said no").WithContext("loading a.pt");
  EXPECT_EQ(e.message, "loading a.pt: disk said no");
  EXPECT_EQ(e.code, "read_failed");
  EXPECT_EQ(e.kind, ErrorKind::kIo);
}

TEST(ResultTest, ErrorKindNamesAreStable) {
  EXPECT_STREQ(ErrorKindName(ErrorKind::kInvalidArgument), "invalid_argument");
  EXPECT_STREQ(ErrorKindName(ErrorKind::kNotFound), "not_found");
  EXPECT_STREQ(ErrorKindName(ErrorKind::kPayloadTooLarge), "payload_too_large");
  EXPECT_STREQ(ErrorKindName(ErrorKind::kTimeout), "timeout");
  EXPECT_STREQ(ErrorKindName(ErrorKind::kInternal), "internal");
}

TEST(LogTest, LevelsAndComponentLoggers) {
  auto a = log::Get("test-component");
  EXPECT_EQ(a, log::Get("test-component"));
  ASSERT_TRUE(log::SetLevel("warn").ok());
  EXPECT_EQ(a->level(), spdlog::level::warn);
  EXPECT_EQ(log::Get("test-component-2")->level(), spdlog::level::warn);
  auto bad = log::SetLevel("loud");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_log_level");
  EXPECT_NE(bad.error().message.find("loud"), std::string::npos);
  EXPECT_EQ(a->level(), spdlog::level::warn);  // unchanged by the bad call
  ASSERT_TRUE(log::SetLevel("info").ok());
}

}  // namespace
}  // namespace edgeprune
