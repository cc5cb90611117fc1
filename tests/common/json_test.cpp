#include "edgeprune/common/json.hpp"

#include <gtest/gtest.h>

namespace edgeprune::json {
namespace {

bj::object Obj(std::string_view text) {
  auto o = ParseObject(text);
  EXPECT_TRUE(o.ok()) << o.error().ToString();
  return o.ok() ? *o : bj::object{};
}

TEST(JsonTest, ParseErrorsAreInvalidJson) {
  EXPECT_TRUE(Parse("[1, 2]").ok());
  auto bad = Parse("{\"a\": ");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_json");
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(ParseObject("[1]").error().code, "invalid_json");
  EXPECT_EQ(Parse("").error().code, "invalid_json");
  // Nesting deeper than 64 is refused rather than recursing without bound.
  EXPECT_EQ(Parse(std::string(100, '[') + std::string(100, ']')).error().code, "invalid_json");
}

TEST(JsonTest, AccessorsReadValues) {
  auto o = Obj(R"({"s":"x","i":-3,"u":18446744073709551615,"d":1.5,"di":4.0,"b":true,
                   "o":{"k":1},"a":[1,2],"n":null})");
  EXPECT_EQ(GetString(o, "s").value(), "x");
  EXPECT_EQ(GetInt(o, "i").value(), -3);
  EXPECT_EQ(GetInt(o, "di").value(), 4);  // integral doubles are integers
  EXPECT_DOUBLE_EQ(GetDouble(o, "d").value(), 1.5);
  EXPECT_DOUBLE_EQ(GetDouble(o, "i").value(), -3.0);  // ints accepted as numbers
  EXPECT_TRUE(GetBool(o, "b").value());
  EXPECT_EQ(GetObject(o, "o").value().at("k").as_int64(), 1);
  EXPECT_EQ(GetArray(o, "a").value().size(), 2u);
  EXPECT_EQ(GetInt(o, "u").error().message, "field 'u' is too large");
}

TEST(JsonTest, MissingAndWrongTypesNameTheField) {
  auto o = Obj(R"({"s":1,"i":"1","f":1.5,"b":"yes","o":[],"a":{},"n":null})");
  auto missing = GetString(o, "absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "invalid_field");
  EXPECT_EQ(missing.error().message, "field 'absent' is missing");
  EXPECT_EQ(GetString(o, "n").error().message, "field 'n' is missing");  // null counts as missing
  EXPECT_EQ(GetString(o, "s").error().message, "field 's' must be a string");
  EXPECT_EQ(GetInt(o, "i").error().message, "field 'i' must be an integer");
  EXPECT_EQ(GetInt(o, "f").error().message, "field 'f' must be an integer");
  EXPECT_EQ(GetDouble(o, "i").error().message, "field 'i' must be a number");
  EXPECT_EQ(GetBool(o, "b").error().message, "field 'b' must be true or false");
  EXPECT_EQ(GetObject(o, "o").error().message, "field 'o' must be an object");
  EXPECT_EQ(GetArray(o, "a").error().message, "field 'a' must be an array");
}

TEST(JsonTest, OptionalAccessors) {
  auto o = Obj(R"({"s":"x","i":7,"d":0.25,"n":null,"bad":true})");
  EXPECT_EQ(GetOptString(o, "s").value(), std::optional<std::string>("x"));
  EXPECT_EQ(GetOptString(o, "absent").value(), std::nullopt);
  EXPECT_EQ(GetOptString(o, "n").value(), std::nullopt);
  EXPECT_EQ(GetOptInt(o, "i").value(), std::optional<std::int64_t>(7));
  EXPECT_EQ(GetOptDouble(o, "d").value(), std::optional<double>(0.25));
  EXPECT_EQ(GetOptInt(o, "bad").error().code, "invalid_field");
  EXPECT_EQ(GetOptDouble(o, "bad").error().code, "invalid_field");
  EXPECT_EQ(GetOptString(o, "bad").error().code, "invalid_field");
}

TEST(JsonTest, SerializeAndPrettyRoundTrip) {
  auto v = Parse(R"({"a":[1,{"b":"c"}],"e":{},"f":[]})").value();
  EXPECT_EQ(Serialize(v), R"({"a":[1,{"b":"c"}],"e":{},"f":[]})");
  std::string pretty = SerializePretty(v);
  EXPECT_EQ(pretty,
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": \"c\"\n    }\n  ],\n  \"e\": {},\n"
            "  \"f\": []\n}");
  EXPECT_EQ(Parse(pretty).value(), v);
}

}  // namespace
}  // namespace edgeprune::json
