#pragma once
// Request-target parsing: path and query split, percent-decoding, query parameters.
//
// Thread-safety: pure functions.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace edgeprune::http {

// Decodes %XX escapes; when plus_is_space, '+' becomes ' ' (query strings). Returns nullopt for a
// truncated or non-hex escape.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space = false);

struct ParsedTarget {
  std::string raw_path;  // still encoded, split on '/' before decoding each segment
  std::map<std::string, std::string> query;
};

// Splits "/a/b?x=1&y=%20" into its raw path and decoded query parameters. A malformed escape in
// the query yields nullopt. Later duplicates of a key are ignored.
std::optional<ParsedTarget> ParseTarget(std::string_view target);

}  // namespace edgeprune::http
