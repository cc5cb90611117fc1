#pragma once
// Where the server's database lives: the config key `store.url`.
//
//   ""                                   the SQLite file <data_dir>/edgeprune.db (the default)
//   sqlite:///var/lib/edgeprune/x.db     a SQLite file (absolute path)
//   postgresql://user:pw@host:5432/db    PostgreSQL (also postgres://, and every libpq URI form,
//   postgresql:///db?host=/run/pg        e.g. a Unix socket directory as host=)
//
// A malformed URL is refused here with one error naming what is wrong; no error or display
// string ever holds the password.
//
// Thread-safety: pure functions; OpenStore as Database::Open.

#include <memory>
#include <string>
#include <string_view>

#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"

namespace edgeprune::store {

struct StoreLocation {
  Dialect dialect = Dialect::kSqlite;
  std::string target;   // SQLite: the file; PostgreSQL: the libpq connection URI
  std::string display;  // for logs and errors: the file, or the URL without its password
};

Result<StoreLocation> ParseStoreUrl(std::string_view url, const std::string& data_dir);

// Opens the database `location` names (its first connection included).
Result<std::unique_ptr<Database>> OpenStore(const StoreLocation& location,
                                            const OpenOptions& options);

}  // namespace edgeprune::store
