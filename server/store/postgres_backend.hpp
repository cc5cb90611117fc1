#pragma once
// The PostgreSQL backend of store::Database, over libpq.
//
// Statements are prepared on the server once per connection (cached by SQL text) after their
// `?`/`?N`/`:name` parameters are rewritten to `$N` (sql_placeholders.hpp). Parameters travel as
// text (blobs as binary) and take the type the server infers from where they stand, as SQLite's
// do; results come back as text and the column getters convert (booleans read 1/0, bytea is
// unescaped), so callers read the same values from either backend.
//
// Write transactions are BEGIN ISOLATION LEVEL SERIALIZABLE, and there is no in-process writer
// queue: PostgreSQL lets writers run side by side and locks rows, not the database, so queueing
// them in one process would only serialize work the server can overlap — and could not order
// the writers of other server processes anyway. What SQLite's single writer gave the modules
// (every read-then-write transaction behaves as if run alone) SERIALIZABLE keeps: a transaction
// that would break it fails with SQLSTATE 40001, which maps, like a deadlock (40P01) or a
// lock_timeout (55P03, set to busy_timeout), to kUnavailable "database_busy" — the error a
// SQLite writer gets when busy_timeout runs out. Commits are durable at return
// (synchronous_commit=on, the server's default), so a durable transaction needs nothing more.
// WriteMode::kRowLocked transactions are READ COMMITTED instead: the job queue's claim
// (SELECT … FOR UPDATE SKIP LOCKED) and the task leases' upsert hold the row locks their
// correctness needs, and under SERIALIZABLE racing claimers would fail on each other's reads.
// After any failed statement PostgreSQL refuses the rest of the transaction; committing it then
// fails with "database_error" instead of committing part of it.
//
// Thread-safety: a connection is used by one thread at a time (see database.hpp).

#include <string>
#include <string_view>

#include "server/store/database.hpp"

namespace edgeprune::store {

// Connections to `conninfo` (a libpq URI or key=value string). `display` names the database in
// errors and must not hold the password; the password never appears in an error either.
ConnectionFactory PostgresConnections(const std::string& conninfo, const std::string& display,
                                      const OpenOptions& options);

// Maps a SQLSTATE to the store's Error (see database.hpp); `detail` is PostgreSQL's message.
Error PostgresError(std::string_view sqlstate, std::string_view detail, std::string_view statement);

}  // namespace edgeprune::store
