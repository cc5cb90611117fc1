#pragma once
// JSON helpers on Boost.JSON. Parsing never throws: malformed text and wrong types become Errors
// that name the offending field.

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "edgeprune/common/result.hpp"

namespace edgeprune::json {

namespace bj = boost::json;

// Parses text into a value; error code "invalid_json" with the position on failure.
Result<bj::value> Parse(std::string_view text);
// Parses and requires an object at the top level.
Result<bj::object> ParseObject(std::string_view text);

std::string Serialize(const bj::value& v);
std::string SerializePretty(const bj::value& v);

// Field accessors: error code "invalid_field" naming the key when missing or of the wrong type.
// The member `key`, or nullptr when it is absent or null.
const bj::value* FindField(const bj::object& o, std::string_view key);
// invalid_field (kInvalidArgument): "field '<key>' <what>".
Error FieldError(std::string_view key, const std::string& what);

Result<std::string> GetString(const bj::object& o, std::string_view key);
Result<std::int64_t> GetInt(const bj::object& o, std::string_view key);
Result<double> GetDouble(const bj::object& o, std::string_view key);  // accepts ints too
Result<bool> GetBool(const bj::object& o, std::string_view key);
Result<bj::object> GetObject(const bj::object& o, std::string_view key);
Result<bj::array> GetArray(const bj::object& o, std::string_view key);

// Optional variants: missing (or null) → std::nullopt; present with a wrong type → error.
Result<std::optional<std::string>> GetOptString(const bj::object& o, std::string_view key);
Result<std::optional<std::int64_t>> GetOptInt(const bj::object& o, std::string_view key);
Result<std::optional<double>> GetOptDouble(const bj::object& o, std::string_view key);

}  // namespace edgeprune::json
