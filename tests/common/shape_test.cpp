#include "edgeprune/common/shape.hpp"

#include <gtest/gtest.h>

namespace edgeprune {
namespace {

TEST(ParseShapeTest, AcceptsCommaOrXSeparatedSizes) {
  EXPECT_EQ(*ParseShape("1,28,28"), (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(*ParseShape("3x32X32"), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(*ParseShape("65536"), (std::vector<std::int64_t>{65536}));
}

TEST(ParseShapeTest, RefusesEverythingElseWithInvalidShape) {
  for (const char* text : {"", ",", "1,,2", "1,2,", ",1", "+5", "-1,2", " 5", "5 ", "5e3", "0",
                           "65537", "99999999999999999999", "1;2", "a", "x", "1x"}) {
    auto r = ParseShape(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "'";
    EXPECT_EQ(r.error().code, "invalid_shape") << text;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << text;
  }
}

TEST(ParseShapeTest, NamesAtMostTheStartOfAnOverlongText) {
  const std::string text(10000, '7');
  auto r = ParseShape(text);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message.size(), 200u);
}

}  // namespace
}  // namespace edgeprune
