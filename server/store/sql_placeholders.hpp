#pragma once
// Rewrites SQLite-style parameters to PostgreSQL's: `?` → `$N` (the next number after the largest
// so far), `?N` → `$N`, `:name` → `$N` (a number per distinct name, in order of first use) —
// SQLite's own numbering, so an index bound on one backend means the same parameter on the other.
// String literals, quoted identifiers, comments and `::` casts are copied untouched.
//
// Thread-safety: pure functions.

#include <string>
#include <string_view>
#include <vector>

namespace edgeprune::store {

struct TranslatedSql {
  std::string sql;                 // with $N parameters
  int parameters = 0;              // the largest N
  std::vector<std::string> names;  // names[i]: ":name" of parameter i+1, or "" for ?/?N
};

TranslatedSql ToDollarParameters(std::string_view sql);

}  // namespace edgeprune::store
