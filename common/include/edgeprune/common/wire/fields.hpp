#pragma once
// Range-checked field readers for the wire codecs. Every error names the field, the accepted range
// and, where it helps, the value received: "field 'cores' must be an integer in [1, 4096], got 1e+30".
//
// Thread-safety: free functions without shared state.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::wire {

namespace bj = boost::json;

Result<std::int64_t> ReadInt(const bj::object& o, std::string_view key, std::int64_t min,
                             std::int64_t max);
Result<std::optional<std::int64_t>> ReadOptInt(const bj::object& o, std::string_view key,
                                               std::int64_t min, std::int64_t max);
Result<double> ReadDouble(const bj::object& o, std::string_view key, double min, double max);
Result<std::optional<double>> ReadOptDouble(const bj::object& o, std::string_view key, double min,
                                            double max);
// Non-empty (unless min_len is 0), at most max_len bytes, no control characters.
Result<std::string> ReadString(const bj::object& o, std::string_view key, std::size_t max_len,
                               std::size_t min_len = 1);
Result<std::optional<std::string>> ReadOptString(const bj::object& o, std::string_view key,
                                                 std::size_t max_len);
// An array of at most max_items short strings.
Result<std::vector<std::string>> ReadStringList(const bj::object& o, std::string_view key,
                                                std::size_t max_items, std::size_t max_len);

// Fails naming the first key of o that is not in allowed: catches typos in caps and patches.
Status RejectUnknownKeys(const bj::object& o, const std::vector<std::string_view>& allowed,
                         std::string_view where);

}  // namespace edgeprune::wire
