#pragma once
// What the modules share to take part in retention (the retention task, docs/operations.md):
// DeleteInBatches prunes a table, ReadStrings reads the blob names a table references for the
// blob collector (BlobStore::Collect).
//
// Deleting many old rows without holding the database for the whole deletion: the retention
// task's modules prune their tables through DeleteInBatches, which runs one DELETE per
// transaction of at most `batch` rows until a batch deletes fewer. Between batches other writers
// (telemetry ingest, heartbeat flushes) get their turn: on SQLite a single DELETE of millions of
// rows would hold the one write lock for seconds.
//
// `sql` selects the rows through a subquery whose LIMIT is its last parameter, e.g.
//   DELETE FROM variant_events WHERE id IN (SELECT id FROM variant_events WHERE at < ?1 LIMIT ?2)
// and `args` bind the parameters before it. Each batch runs in WriteMode::kRowLocked (PostgreSQL
// READ COMMITTED): a row that a concurrent writer changes is waited on, not a serialization
// failure, and a row deleted meanwhile by another process is simply not deleted twice.
//
// Thread-safety: as Database.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "server/store/database.hpp"

namespace edgeprune::store {

// The default batch: small enough to keep a SQLite write lock well under a second.
inline constexpr std::int64_t kDeleteBatchRows = 5000;

template <typename... Args>
Result<std::int64_t> DeleteInBatches(Database& db, std::string_view name, std::string_view sql,
                                     const Args&... args) {
  std::int64_t total = 0;
  for (;;) {
    EP_ASSIGN_OR_RETURN(std::int64_t deleted,
                        db.WithRowLockedTransaction([&](Connection& conn) -> Result<std::int64_t> {
                          return conn.Execute(name, sql, args..., kDeleteBatchRows);
                        }));
    total += deleted;
    if (deleted < kDeleteBatchRows) return total;
  }
}

// Every non-NULL, non-empty value of the first column of fixed `sql` (no parameters), e.g.
// "SELECT blob_sha256 FROM models".
inline Result<std::vector<std::string>> ReadStrings(Database& db, std::string_view name,
                                                    std::string_view sql) {
  EP_ASSIGN_OR_RETURN(ConnectionLease lease, db.Acquire());
  EP_ASSIGN_OR_RETURN(Statement s, lease->Query(name, sql));
  std::vector<std::string> out;
  for (;;) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    if (!s.IsNull(0) && !s.Text(0).empty()) out.push_back(s.Text(0));
  }
}

}  // namespace edgeprune::store
