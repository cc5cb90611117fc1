#include "server/fleet/api_tokens.hpp"

#include <algorithm>

#include "edgeprune/common/crypto.hpp"

namespace edgeprune::fleet {
namespace {

bool ValidName(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Result<ApiTokenInfo> Row(const store::Statement& s) {
  auto role = ParseRole(s.Text(2));
  if (!role) {
    return MakeError(ErrorKind::kInternal, "invalid_token_row",
                     "api token '" + s.Text(1) + "' has unknown role '" + s.Text(2) + "'");
  }
  return ApiTokenInfo{s.Int64(0), s.Text(1), *role, s.Int64(3), s.OptInt64(4)};
}

}  // namespace

Result<CreatedToken> ApiTokens::Create(const std::string& name, Role role,
                                       const std::string& actor) {
  if (!ValidName(name)) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_token_name",
                     "token name must be 1-64 characters of letters, digits, '.', '_' or '-'");
  }
  CreatedToken out;
  out.secret = "ept_" + crypto::RandomToken(32);
  out.info.name = name;
  out.info.role = role;
  out.info.created_at_ms = clock_->NowMs();
  auto r = db_->WithDurableTransaction([&](store::Connection& conn) -> Status {
    // RETURNING id: the generated key, read the same way on SQLite and PostgreSQL.
    auto inserted = conn.Query(
        "api_token_insert",
        "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?) "
        "RETURNING id",
        name, std::string(RoleName(role)), crypto::Sha256Hex(out.secret), out.info.created_at_ms);
    if (!inserted.ok()) return inserted.error();
    auto row = inserted->Step();
    if (!row.ok()) {
      if (row.error().code == "unique_violation") {
        return MakeError(ErrorKind::kConflict, "token_name_taken",
                         "an API token named '" + name + "' already exists");
      }
      return row.error();
    }
    if (!*row) {
      return MakeError(ErrorKind::kInternal, "database_error", "api_token_insert returned no id");
    }
    out.info.id = inserted->Int64(0);
    return audit_->Record(conn, actor, "token.create", "token:" + name, Outcome::kOk,
                          std::string("role=") + RoleName(role));
  });
  if (!r.ok()) return r.error();
  return out;
}

Result<ApiTokenInfo> ApiTokens::Authenticate(std::string_view secret) const {
  if (secret.empty() || secret.size() > 256) {
    return MakeError(ErrorKind::kUnauthenticated, "invalid_token", "the bearer token is not valid");
  }
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("api_token_by_hash",
                                   "SELECT id, name, role, created_at, revoked_at FROM api_tokens "
                                   "WHERE token_hash = ? AND revoked_at IS NULL",
                                   crypto::Sha256Hex(secret)));
  EP_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) {
    return MakeError(ErrorKind::kUnauthenticated, "invalid_token",
                     "the bearer token is unknown or revoked");
  }
  return Row(s);
}

Status ApiTokens::Revoke(const std::string& name, const std::string& actor) {
  return db_->WithDurableTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(auto rows, conn.Execute("api_token_revoke",
                                                "UPDATE api_tokens SET revoked_at = ? "
                                                "WHERE name = ? AND revoked_at IS NULL",
                                                clock_->NowMs(), name));
    if (rows == 0) {
      return MakeError(ErrorKind::kNotFound, "token_not_found",
                       "no active API token named '" + name + "'");
    }
    return audit_->Record(conn, actor, "token.revoke", "token:" + name, Outcome::kOk);
  });
}

Result<std::vector<ApiTokenInfo>> ApiTokens::List() const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("api_token_list",
                                   "SELECT id, name, role, created_at, revoked_at FROM api_tokens "
                                   "ORDER BY id"));
  std::vector<ApiTokenInfo> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    EP_ASSIGN_OR_RETURN(auto info, Row(s));
    out.push_back(std::move(info));
  }
  return out;
}

Result<std::optional<CreatedToken>> ApiTokens::EnsureAdmin() {
  // Any token row, revoked or not, means the database has been set up: revoking every admin
  // token must not make the next start print a fresh admin secret to stdout (and so to journald
  // under systemd). Recovery is `edgeprune-server token create --role admin` on the host.
  {
    EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
    EP_ASSIGN_OR_RETURN(store::Statement s,
                        lease->Query("api_token_any", "SELECT EXISTS (SELECT 1 FROM api_tokens)"));
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (row && s.Int64(0) != 0) return std::optional<CreatedToken>();
  }
  EP_ASSIGN_OR_RETURN(auto created, Create("bootstrap-admin", Role::kAdmin, "system"));
  return std::optional<CreatedToken>(std::move(created));
}

}  // namespace edgeprune::fleet
