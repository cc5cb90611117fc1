#include "agent/state/state_dir.hpp"

#include <sys/stat.h>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"

namespace edgeprune::agent {
namespace {

std::string IdentityJsonPath(const StateDir& d) { return d.identity_dir() + "/identity.json"; }

Error Corrupt(const std::string& path, const std::string& why) {
  return MakeError(ErrorKind::kInternal, "identity_corrupt", path + ": " + why);
}

}  // namespace

Result<StateDir> StateDir::Open(const std::string& root) {
  if (root.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_state_dir", "state directory is empty");
  }
  StateDir dir(root);
  EP_RETURN_IF_ERROR(fs::EnsureDir(root, 0700));
  EP_RETURN_IF_ERROR(fs::EnsureDir(dir.identity_dir(), 0700));
  EP_RETURN_IF_ERROR(fs::EnsureDir(dir.variants_dir(), 0700));
  return dir;
}

bool StateDir::HasIdentity() const {
  struct stat st {};
  return ::stat(IdentityJsonPath(*this).c_str(), &st) == 0 && ::stat(key_path().c_str(), &st) == 0;
}

Result<Identity> StateDir::LoadIdentity() const {
  const std::string meta_path = IdentityJsonPath(*this);
  auto meta_text = fs::ReadFile(meta_path, 64 * 1024);
  if (!meta_text.ok()) {
    if (meta_text.error().kind == ErrorKind::kNotFound) {
      return MakeError(ErrorKind::kNotFound, "identity_missing",
                       "the agent is not enrolled (no " + meta_path + ")");
    }
    return meta_text.error();
  }
  auto meta = json::ParseObject(*meta_text);
  if (!meta.ok()) return Corrupt(meta_path, meta.error().message);
  Identity id;
  auto device_id = json::GetString(*meta, "device_id");
  auto server_url = json::GetString(*meta, "server_url");
  auto enrolled_at = json::GetInt(*meta, "enrolled_at");
  auto not_before = json::GetInt(*meta, "not_before");
  auto not_after = json::GetInt(*meta, "not_after");
  for (const Status& s : {device_id.ok() ? Ok() : Status(device_id.error()),
                          server_url.ok() ? Ok() : Status(server_url.error()),
                          enrolled_at.ok() ? Ok() : Status(enrolled_at.error()),
                          not_before.ok() ? Ok() : Status(not_before.error()),
                          not_after.ok() ? Ok() : Status(not_after.error())}) {
    if (!s.ok()) return Corrupt(meta_path, s.error().message);
  }
  id.device_id = *device_id;
  id.server_url = *server_url;
  id.enrolled_at = *enrolled_at;
  id.not_before = *not_before;
  id.not_after = *not_after;
  // The key must still be private to this user: refuse one that others can read.
  struct stat st {};
  if (::stat(key_path().c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    return Corrupt(key_path(), "device key is readable by group or others (want mode 0600)");
  }
  EP_ASSIGN_OR_RETURN(id.key_pem, fs::ReadFile(key_path(), 64 * 1024));
  EP_ASSIGN_OR_RETURN(id.certificate_pem, fs::ReadFile(certificate_path(), 64 * 1024));
  EP_ASSIGN_OR_RETURN(id.server_ca_pem, fs::ReadFile(server_ca_path(), 1024 * 1024));
  return id;
}

Status StateDir::SaveIdentity(const Identity& id) const {
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(key_path(), id.key_pem, 0600));
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(certificate_path(), id.certificate_pem, 0644));
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(server_ca_path(), id.server_ca_pem, 0644));
  boost::json::object meta{{"device_id", id.device_id},     {"server_url", id.server_url},
                           {"enrolled_at", id.enrolled_at}, {"not_before", id.not_before},
                           {"not_after", id.not_after}};
  return fs::WriteFileAtomic(IdentityJsonPath(*this), json::SerializePretty(meta) + "\n", 0600);
}

Status StateDir::SaveCertificate(const std::string& certificate_pem, std::int64_t not_before,
                                 std::int64_t not_after) const {
  EP_ASSIGN_OR_RETURN(Identity id, LoadIdentity());
  id.certificate_pem = certificate_pem;
  id.not_before = not_before;
  id.not_after = not_after;
  return SaveIdentity(id);
}

Result<std::optional<PersistedState>> StateDir::LoadState() const {
  const std::string path = root_ + "/state.json";
  auto text = fs::ReadFile(path, 64 * 1024);
  if (!text.ok()) {
    if (text.error().kind == ErrorKind::kNotFound) return std::optional<PersistedState>();
    return text.error();
  }
  auto o = json::ParseObject(*text);
  if (!o.ok()) return o.error().WithContext(path);
  PersistedState s;
  auto state = json::GetString(*o, "state");
  if (!state.ok()) return state.error().WithContext(path);
  s.state = *state;
  s.updated_at = json::GetInt(*o, "updated_at").value_or(0);
  return std::optional<PersistedState>(s);
}

Status StateDir::SaveState(const PersistedState& state) const {
  boost::json::object o{{"state", state.state}, {"updated_at", state.updated_at}};
  return fs::WriteFileAtomic(root_ + "/state.json", json::Serialize(o) + "\n", 0600);
}

}  // namespace edgeprune::agent
