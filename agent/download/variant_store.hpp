#pragma once
// VariantStore: the installed variants on disk and the record of which one is current.
//
//   <variants_dir>/<variant_id>.v<version>.pt              payload (TorchScript)
//   <variants_dir>/<variant_id>.v<version>.manifest.json   the signed manifest bytes, as received
//   <variants_dir>/<variant_id>.v<version>.manifest.sig    its raw Ed25519 signature
//   <variants_dir>/<variant_id>.v<version>.probe           its probe set, if its manifest names one
//   <variants_dir>/.partial/                               downloads in progress
//   <record_path> (installed.json in the state dir)        {"current": {...}, "previous": {...}}
//
// Install() moves a verified payload (and probe set) into place atomically (fsync, rename,
// directory fsync), writes its manifest and signature, then rewrites the record (atomically) with
// the new variant as current and the old current as previous. The previous variant is kept for a
// rollback; older ones are deleted. A crash at any point leaves the old record, which still names
// complete files.
//
// Thread-safety: not thread-safe; owned by the agent's update path (one thread).

#include <cstdint>
#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/manifest.hpp"

namespace edgeprune::agent {

struct InstalledVariant {
  std::string variant_id;
  std::int64_t version = 0;
  std::string payload_path;
  std::string manifest_path;
  std::string signature_path;
  std::int64_t installed_at = 0;  // unix seconds
};

struct InstallRecord {
  std::optional<InstalledVariant> current;
  std::optional<InstalledVariant> previous;
};

class VariantStore {
 public:
  // Creates variants_dir (and .partial/) when missing. Errors name the path.
  static Result<VariantStore> Open(std::string variants_dir, std::string record_path);

  // Where to download a variant's payload before it is verified and installed.
  std::string PartialPath(const wire::VariantManifest& manifest) const;
  // Where to download its probe set (manifest.probe).
  std::string PartialProbePath(const wire::VariantManifest& manifest) const;
  // Where an installed variant's probe set is (only present when its manifest names one).
  static std::string ProbePath(const InstalledVariant& v);

  // The record; an absent file is an empty record, a corrupt one "install_record_corrupt".
  Result<InstallRecord> Load() const;
  std::optional<std::int64_t> InstalledVersion() const;

  // Installs a payload already verified against `manifest` (at verified_payload_path, normally
  // PartialPath()) and, when the manifest names a probe set, the probe set verified against it
  // (at verified_probe_path, normally PartialProbePath()). Returns the new current entry.
  Result<InstalledVariant> Install(const wire::VariantManifest& manifest,
                                   const std::string& manifest_bytes, const std::string& signature,
                                   const std::string& verified_payload_path,
                                   const std::string& verified_probe_path = "");

  // Makes the previous variant current again (and the current one previous), e.g. when the
  // runtime refuses to start the current one after a restart. "no_previous_variant" when none.
  Result<InstalledVariant> SwapToPrevious();

  const std::string& variants_dir() const { return dir_; }
  const std::string& record_path() const { return record_path_; }

 private:
  VariantStore(std::string dir, std::string record_path)
      : dir_(std::move(dir)), record_path_(std::move(record_path)) {}
  Status Save(const InstallRecord& record) const;

  std::string dir_;
  std::string record_path_;
};

}  // namespace edgeprune::agent
