#include "agent/download/variant_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/wire/fields.hpp"

namespace edgeprune::agent {
namespace {

Error IoError(const std::string& code, const std::string& path, const std::string& what) {
  return MakeError(ErrorKind::kIo, code, path + ": " + what + ": " + std::strerror(errno));
}

Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return IoError("install_failed", path, "open for fsync");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return IoError("install_failed", path, "fsync");
  return Ok();
}

// File names must not escape the variants directory.
bool SafeName(const std::string& id) {
  if (id.empty() || id == "." || id == ".." || id[0] == '.') return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

boost::json::object ToJson(const InstalledVariant& v) {
  return {{"variant_id", v.variant_id},         {"version", v.version},
          {"payload_path", v.payload_path},     {"manifest_path", v.manifest_path},
          {"signature_path", v.signature_path}, {"installed_at", v.installed_at}};
}

Result<std::optional<InstalledVariant>> EntryFromJson(const boost::json::object& o,
                                                      std::string_view key) {
  auto it = o.find(key);
  if (it == o.end() || it->value().is_null()) return std::optional<InstalledVariant>();
  if (!it->value().is_object()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_field",
                     "field '" + std::string(key) + "' must be an object");
  }
  const auto& e = it->value().get_object();
  InstalledVariant v;
  EP_ASSIGN_OR_RETURN(v.variant_id, wire::ReadString(e, "variant_id", 128));
  EP_ASSIGN_OR_RETURN(v.version, wire::ReadInt(e, "version", 1, std::int64_t{1} << 53));
  EP_ASSIGN_OR_RETURN(v.payload_path, wire::ReadString(e, "payload_path", 4096));
  EP_ASSIGN_OR_RETURN(v.manifest_path, wire::ReadString(e, "manifest_path", 4096));
  EP_ASSIGN_OR_RETURN(v.signature_path, wire::ReadString(e, "signature_path", 4096));
  EP_ASSIGN_OR_RETURN(v.installed_at, wire::ReadInt(e, "installed_at", 0, std::int64_t{1} << 40));
  return std::optional<InstalledVariant>(v);
}

void RemoveFiles(const InstalledVariant& v) {
  const std::string probe = VariantStore::ProbePath(v);
  for (const auto* p : {&v.payload_path, &v.manifest_path, &v.signature_path, &probe}) {
    if (::unlink(p->c_str()) != 0 && errno != ENOENT) {
      log::Get("download")->warn("could not remove {}: {}", *p, std::strerror(errno));
    }
  }
}

}  // namespace

Result<VariantStore> VariantStore::Open(std::string variants_dir, std::string record_path) {
  EP_RETURN_IF_ERROR(fs::EnsureDir(variants_dir + "/.partial", 0700));
  return VariantStore(std::move(variants_dir), std::move(record_path));
}

std::string VariantStore::PartialPath(const wire::VariantManifest& m) const {
  return dir_ + "/.partial/" + (SafeName(m.variant_id) ? m.variant_id : "variant") + ".v" +
         std::to_string(m.version) + ".part";
}

std::string VariantStore::PartialProbePath(const wire::VariantManifest& m) const {
  return PartialPath(m) + ".probe";
}

std::string VariantStore::ProbePath(const InstalledVariant& v) {
  // Derived from the payload's name rather than recorded, so records written before probe sets
  // were shipped stay valid.
  const std::string& p = v.payload_path;
  const bool pt = p.size() > 3 && p.compare(p.size() - 3, 3, ".pt") == 0;
  return (pt ? p.substr(0, p.size() - 3) : p) + ".probe";
}

Result<InstallRecord> VariantStore::Load() const {
  auto text = fs::ReadFile(record_path_, 1024 * 1024);
  if (!text.ok()) {
    if (text.error().code == "file_not_found") return InstallRecord{};
    return text.error();
  }
  auto corrupt = [&](const Error& e) {
    return MakeError(ErrorKind::kIo, "install_record_corrupt", record_path_ + ": " + e.message);
  };
  auto o = json::ParseObject(*text);
  if (!o.ok()) return corrupt(o.error());
  InstallRecord r;
  auto current = EntryFromJson(*o, "current");
  if (!current.ok()) return corrupt(current.error());
  auto previous = EntryFromJson(*o, "previous");
  if (!previous.ok()) return corrupt(previous.error());
  r.current = *current;
  r.previous = *previous;
  return r;
}

std::optional<std::int64_t> VariantStore::InstalledVersion() const {
  auto r = Load();
  if (!r.ok() || !r->current) return std::nullopt;
  return r->current->version;
}

Status VariantStore::Save(const InstallRecord& r) const {
  boost::json::object o;
  o["current"] = r.current ? boost::json::value(ToJson(*r.current)) : nullptr;
  o["previous"] = r.previous ? boost::json::value(ToJson(*r.previous)) : nullptr;
  return fs::WriteFileAtomic(record_path_, json::SerializePretty(o) + "\n", 0600);
}

Result<InstalledVariant> VariantStore::Install(const wire::VariantManifest& manifest,
                                               const std::string& manifest_bytes,
                                               const std::string& signature,
                                               const std::string& verified_payload_path,
                                               const std::string& verified_probe_path) {
  if (!SafeName(manifest.variant_id)) {
    // The id is in the signed manifest: it will never name a file.
    return PermanentError(ErrorKind::kInvalidArgument, "invalid_variant_id",
                          "variant id '" + manifest.variant_id + "' cannot name a file");
  }
  EP_ASSIGN_OR_RETURN(auto record, Load());
  const std::string base = dir_ + "/" + manifest.variant_id + ".v" + std::to_string(manifest.version);
  InstalledVariant v;
  v.variant_id = manifest.variant_id;
  v.version = manifest.version;
  v.payload_path = base + ".pt";
  v.manifest_path = base + ".manifest.json";
  v.signature_path = base + ".manifest.sig";
  v.installed_at = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();

  EP_RETURN_IF_ERROR(FsyncPath(verified_payload_path, O_RDONLY));
  if (::rename(verified_payload_path.c_str(), v.payload_path.c_str()) != 0) {
    return IoError("install_failed", v.payload_path, "rename from " + verified_payload_path);
  }
  if (!verified_probe_path.empty()) {
    const std::string probe_path = ProbePath(v);
    EP_RETURN_IF_ERROR(FsyncPath(verified_probe_path, O_RDONLY));
    if (::rename(verified_probe_path.c_str(), probe_path.c_str()) != 0) {
      return IoError("install_failed", probe_path, "rename from " + verified_probe_path);
    }
  }
  EP_RETURN_IF_ERROR(FsyncPath(dir_, O_RDONLY | O_DIRECTORY));
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(v.manifest_path, manifest_bytes, 0644));
  EP_RETURN_IF_ERROR(fs::WriteFileAtomic(v.signature_path, signature, 0644));

  InstallRecord next;
  next.current = v;
  // Reinstalling the current variant (same id and version) keeps the older previous one.
  const bool same = record.current && record.current->payload_path == v.payload_path;
  next.previous = same ? record.previous : record.current;
  EP_RETURN_IF_ERROR(Save(next));

  // Only current and previous are kept.
  std::set<std::string> keep{v.payload_path};
  if (next.previous) keep.insert(next.previous->payload_path);
  for (const auto& old : {record.current, record.previous}) {
    if (old && !keep.count(old->payload_path)) RemoveFiles(*old);
  }
  log::Get("download")->info("installed variant {} version {} at {}", v.variant_id, v.version,
                             v.payload_path);
  return v;
}

Result<InstalledVariant> VariantStore::SwapToPrevious() {
  EP_ASSIGN_OR_RETURN(auto record, Load());
  if (!record.previous) {
    return MakeError(ErrorKind::kFailedPrecondition, "no_previous_variant",
                     "there is no previous variant to roll back to");
  }
  InstallRecord next{record.previous, record.current};
  EP_RETURN_IF_ERROR(Save(next));
  return *next.current;
}

}  // namespace edgeprune::agent
