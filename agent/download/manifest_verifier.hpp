#pragma once
// ManifestVerifier: decides whether a downloaded variant may be installed.
//   1. signature: the detached Ed25519 signature must verify over the manifest's exact bytes with
//      the trusted key the manifest names. Refusals, each with its own code (kPermissionDenied):
//      "manifest_unsigned" (no signature), "unknown_signing_key" (key id not in the keyring),
//      "bad_signature". Only then are the bytes decoded (strict, "invalid_field" naming the field).
//   2. version: must be greater than the installed version, unless the signed manifest carries
//      rollback=true ("version_not_newer", kConflict). A rollback permission must name this
//      device ("rollback_not_for_device") and not have expired ("rollback_expired"): a signed
//      rollback captured from one device cannot downgrade another, nor this one later.
//   3. payload: size and SHA-256 of the downloaded file must match the manifest
//      ("payload_size_mismatch", "payload_digest_mismatch", kPermissionDenied).
// Refusals of steps 1 and 2 are Retry::kPermanent (the same signed bytes fail the same way);
// payload mismatches are Retry::kLimited (a new fetch may bring the right bytes).
//
// Thread-safety: immutable; every method may be called from any thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/download/keyring.hpp"
#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/manifest.hpp"

namespace edgeprune::agent {

class ManifestVerifier {
 public:
  explicit ManifestVerifier(std::shared_ptr<const TrustedKeyring> keyring);

  // Step 1. signature is the raw 64-byte Ed25519 signature.
  Result<wire::VariantManifest> Verify(std::string_view manifest_bytes,
                                       std::string_view signature) const;
  // Step 2. installed_version is nullopt when nothing is installed yet; device_id is this agent's
  // enrolled identity, now_s the current unix time.
  static Status CheckVersion(const wire::VariantManifest& manifest,
                             std::optional<std::int64_t> installed_version,
                             std::string_view device_id, std::int64_t now_s);
  // Step 3, streaming the file.
  static Status CheckPayload(const wire::VariantManifest& manifest, const std::string& path);

 private:
  std::shared_ptr<const TrustedKeyring> keyring_;
};

}  // namespace edgeprune::agent
