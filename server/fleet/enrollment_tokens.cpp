#include "server/fleet/enrollment_tokens.hpp"

#include <algorithm>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/wire/fields.hpp"

namespace edgeprune::fleet {

std::string TagsToJsonText(const std::vector<std::string>& tags) {
  boost::json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  return boost::json::serialize(a);
}

std::vector<std::string> TagsFromJsonText(const std::string& text) {
  std::vector<std::string> out;
  auto v = json::Parse(text);
  if (!v.ok() || !v->is_array()) return out;
  for (const auto& item : v->get_array()) {
    if (item.is_string()) out.emplace_back(item.get_string());
  }
  return out;
}

Status ValidateTags(const std::vector<std::string>& tags) {
  if (tags.size() > 32) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field", "field 'tags' has more than 32 items");
  }
  for (const auto& t : tags) {
    bool ok = !t.empty() && t.size() <= 64 && std::all_of(t.begin(), t.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("._:=-").find(c) != std::string_view::npos;
    });
    if (!ok) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                       "field 'tags': '" + t.substr(0, 64) +
                           "' must be 1-64 characters of letters, digits and . _ : = -");
    }
  }
  return Ok();
}

Result<EnrollmentTokenSpec> EnrollmentTokens::SpecFromJson(const boost::json::object& o) {
  EP_RETURN_IF_ERROR(wire::RejectUnknownKeys(o, {"ttl_s", "max_uses", "tags", "note"},
                                             "enrollment token request"));
  EnrollmentTokenSpec spec;
  EP_ASSIGN_OR_RETURN(auto ttl, wire::ReadOptInt(o, "ttl_s", 1, kMaxTtl.count()));
  if (ttl) spec.ttl = std::chrono::seconds(*ttl);
  EP_ASSIGN_OR_RETURN(auto uses, wire::ReadOptInt(o, "max_uses", 1, kMaxUses));
  if (uses) spec.max_uses = *uses;
  if (o.contains("tags") && !o.at("tags").is_null()) {
    EP_ASSIGN_OR_RETURN(spec.tags, wire::ReadStringList(o, "tags", 32, 64));
    EP_RETURN_IF_ERROR(ValidateTags(spec.tags));
  }
  EP_ASSIGN_OR_RETURN(auto note, wire::ReadOptString(o, "note", 256));
  spec.note = note.value_or("");
  return spec;
}

boost::json::object EnrollmentTokens::ToJson(const EnrollmentTokenInfo& i) {
  boost::json::array tags;
  for (const auto& t : i.tags) tags.emplace_back(t);
  boost::json::object o{{"id", i.id},           {"created_at_ms", i.created_at_ms},
                         {"expires_at_ms", i.expires_at_ms}, {"max_uses", i.max_uses},
                         {"uses", i.uses},       {"tags", std::move(tags)},
                         {"note", i.note}};
  o["revoked_at_ms"] = i.revoked_at_ms ? boost::json::value(*i.revoked_at_ms) : nullptr;
  if (!i.created_by.empty()) o["created_by"] = i.created_by;
  return o;
}

Result<std::vector<EnrollmentTokenInfo>> EnrollmentTokens::List() const {
  EP_ASSIGN_OR_RETURN(store::ConnectionLease lease, db_->Acquire());
  EP_ASSIGN_OR_RETURN(store::Statement s,
                      lease->Query("enrollment_token_list",
                                   "SELECT id, created_at, expires_at, max_uses, uses, tags, note, "
                                   "created_by, revoked_at FROM enrollment_tokens ORDER BY id DESC"));
  std::vector<EnrollmentTokenInfo> out;
  while (true) {
    EP_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    out.push_back(EnrollmentTokenInfo{s.Int64(0), s.Int64(1), s.Int64(2), s.Int64(3), s.Int64(4),
                                      TagsFromJsonText(s.Text(5)), s.Text(6), s.Text(7),
                                      s.OptInt64(8)});
  }
  return out;
}

Status EnrollmentTokens::Revoke(std::int64_t id, const std::string& actor) {
  const std::string target = "enrollment_token:" + std::to_string(id);
  return db_->WithDurableTransaction([&](store::Connection& conn) -> Status {
    EP_ASSIGN_OR_RETURN(auto rows, conn.Execute("enrollment_token_revoke",
                                                "UPDATE enrollment_tokens SET revoked_at = ? "
                                                "WHERE id = ? AND revoked_at IS NULL",
                                                clock_->NowMs(), id));
    if (rows == 0) {
      EP_ASSIGN_OR_RETURN(store::Statement s,
                          conn.Query("enrollment_token_exists",
                                     "SELECT 1 FROM enrollment_tokens WHERE id = ?", id));
      EP_ASSIGN_OR_RETURN(bool found, s.Step());
      if (!found) {
        return MakeError(ErrorKind::kNotFound, "enrollment_token_not_found",
                         "no enrollment token with id " + std::to_string(id));
      }
      return MakeError(ErrorKind::kConflict, "enrollment_token_revoked",
                       "enrollment token " + std::to_string(id) + " is already revoked");
    }
    return audit_->Record(conn, actor, "enrollment_token.revoke", target, Outcome::kOk);
  });
}

Result<CreatedEnrollmentToken> EnrollmentTokens::Create(const EnrollmentTokenSpec& spec,
                                                        const std::string& actor) {
  EP_RETURN_IF_ERROR(ValidateTags(spec.tags));
  if (spec.max_uses < 1 || spec.max_uses > kMaxUses || spec.ttl.count() < 1 || spec.ttl > kMaxTtl) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "max_uses must be in [1, 100000] and ttl_s in [1, 31536000]");
  }
  CreatedEnrollmentToken out;
  out.secret = "epe_" + crypto::RandomToken(32);
  out.info.created_at_ms = clock_->NowMs();
  out.info.expires_at_ms = out.info.created_at_ms + spec.ttl.count() * 1000;
  out.info.max_uses = spec.max_uses;
  out.info.tags = spec.tags;
  out.info.note = spec.note;
  auto r = db_->WithDurableTransaction([&](store::Connection& conn) -> Status {
    // RETURNING id: the generated key, read the same way on SQLite and PostgreSQL.
    EP_ASSIGN_OR_RETURN(
        store::Statement inserted,
        conn.Query("enrollment_token_insert",
                   "INSERT INTO enrollment_tokens (token_hash, created_by, created_at, "
                   "expires_at, max_uses, tags, note) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                   crypto::Sha256Hex(out.secret), actor, out.info.created_at_ms,
                   out.info.expires_at_ms, spec.max_uses, TagsToJsonText(spec.tags), spec.note));
    EP_ASSIGN_OR_RETURN(bool row, inserted.Step());
    if (!row) {
      return MakeError(ErrorKind::kInternal, "database_error",
                       "enrollment_token_insert returned no id");
    }
    out.info.id = inserted.Int64(0);
    return audit_->Record(conn, actor, "enrollment_token.create",
                          "enrollment_token:" + std::to_string(out.info.id), Outcome::kOk,
                          "max_uses=" + std::to_string(spec.max_uses) +
                              " ttl_s=" + std::to_string(spec.ttl.count()));
  });
  if (!r.ok()) return r.error();
  return out;
}

Result<EnrollmentTokenInfo> EnrollmentTokens::Consume(store::Connection& conn,
                                                      std::string_view secret) const {
  EP_ASSIGN_OR_RETURN(
      store::Statement s,
      conn.Query("enrollment_token_by_hash",
                 "SELECT id, created_at, expires_at, max_uses, uses, tags, note, revoked_at "
                 "FROM enrollment_tokens WHERE token_hash = ?",
                 crypto::Sha256Hex(secret)));
  EP_ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) {
    return MakeError(ErrorKind::kUnauthenticated, "invalid_enrollment_token",
                     "the enrollment token is not known");
  }
  EnrollmentTokenInfo info{s.Int64(0), s.Int64(1), s.Int64(2), s.Int64(3), s.Int64(4),
                           TagsFromJsonText(s.Text(5)), s.Text(6), "", s.OptInt64(7)};
  EP_RETURN_IF_ERROR(s.Reset());
  if (info.revoked_at_ms) {
    return MakeError(ErrorKind::kPermissionDenied, "enrollment_token_revoked",
                     "the enrollment token has been revoked");
  }
  if (clock_->NowMs() >= info.expires_at_ms) {
    return MakeError(ErrorKind::kPermissionDenied, "enrollment_token_expired",
                     "the enrollment token has expired");
  }
  if (info.uses >= info.max_uses) {
    return MakeError(ErrorKind::kPermissionDenied, "enrollment_token_used_up",
                     "the enrollment token has no uses left");
  }
  EP_ASSIGN_OR_RETURN(auto rows, conn.Execute("enrollment_token_use",
                                              "UPDATE enrollment_tokens SET uses = uses + 1 "
                                              "WHERE id = ? AND uses < max_uses",
                                              info.id));
  if (rows != 1) {
    return MakeError(ErrorKind::kPermissionDenied, "enrollment_token_used_up",
                     "the enrollment token has no uses left");
  }
  ++info.uses;
  return info;
}

}  // namespace edgeprune::fleet
