#pragma once
// The audit trail (table audit_log): who did what to which target, when, and how it ended.
// Every state-changing operator call and every device enrollment/revocation is recorded.
//
// Thread-safety: safe to call from any thread (each call leases its own connection, or uses the
// caller's connection inside the caller's transaction).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/clock.hpp"
#include "server/store/database.hpp"

namespace edgeprune::fleet {

enum class Outcome { kOk, kDenied, kFailed };
const char* OutcomeName(Outcome outcome);

struct AuditEntry {
  std::int64_t id = 0;
  std::int64_t at_ms = 0;
  std::string actor;   // "token:<name>", "device:<id>", "system"
  std::string action;  // "device.enroll", "token.create" ...
  std::string target;
  std::string outcome;
  std::string detail;
};

struct AuditQuery {
  std::optional<std::string> actor{};
  std::optional<std::string> action{};
  std::optional<std::string> target{};
  std::optional<std::int64_t> before_id{};  // pagination cursor: entries with smaller ids
  int limit = 100;
};

class AuditLog {
 public:
  AuditLog(std::shared_ptr<store::Database> db, std::shared_ptr<const Clock> clock)
      : db_(std::move(db)), clock_(std::move(clock)) {}

  // In the caller's transaction, so the record commits (or not) with the change it describes.
  Status Record(store::Connection& conn, const std::string& actor, const std::string& action,
                const std::string& target, Outcome outcome, const std::string& detail = "") const;
  // On its own connection: for denials and failures, which have no transaction to join.
  Status Record(const std::string& actor, const std::string& action, const std::string& target,
                Outcome outcome, const std::string& detail = "") const;

  // In the caller's transaction, stamped with the system clock: for modules that record their
  // own changes (catalog, deploy) without holding an AuditLog. The one writer of audit_log is
  // still this class.
  static Status RecordIn(store::Connection& conn, const std::string& actor,
                         const std::string& action, const std::string& target,
                         const std::string& detail, Outcome outcome = Outcome::kOk);

  // Newest first.
  Result<std::vector<AuditEntry>> List(const AuditQuery& query) const;

  static boost::json::object ToJson(const AuditEntry& e);

 private:
  static Status Insert(store::Connection& conn, std::int64_t at_ms, const std::string& actor,
                       const std::string& action, const std::string& target, Outcome outcome,
                       const std::string& detail);

  std::shared_ptr<store::Database> db_;
  std::shared_ptr<const Clock> clock_;
};

}  // namespace edgeprune::fleet
