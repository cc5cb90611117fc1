#include "agent/download/manifest_verifier.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/json.hpp"

namespace edgeprune::agent {

ManifestVerifier::ManifestVerifier(std::shared_ptr<const TrustedKeyring> keyring)
    : keyring_(std::move(keyring)) {}

Result<wire::VariantManifest> ManifestVerifier::Verify(std::string_view manifest_bytes,
                                                       std::string_view signature) const {
  // Every refusal of the manifest is permanent: the server sends the same bytes again.
  if (signature.empty()) {
    return PermanentError(
        ErrorKind::kPermissionDenied, "manifest_unsigned",
        "the manifest carries no signature; unsigned variants are never installed");
  }
  if (manifest_bytes.size() > wire::kMaxManifestBytes) {
    return PermanentError(
        ErrorKind::kPayloadTooLarge, "manifest_too_large",
        "manifest of " + std::to_string(manifest_bytes.size()) + " bytes is too large");
  }
  // The key id is read from the still-untrusted bytes only to pick the key; nothing else is used
  // before the signature verifies.
  auto untrusted = json::ParseObject(manifest_bytes);
  if (!untrusted.ok()) return untrusted.error().WithRetry(Retry::kPermanent);
  auto key_id = json::GetString(*untrusted, "key_id");
  if (!key_id.ok()) return key_id.error().WithContext("manifest").WithRetry(Retry::kPermanent);
  auto pem = keyring_ ? keyring_->Find(*key_id) : std::nullopt;
  if (!pem) {
    return PermanentError(
        ErrorKind::kPermissionDenied, "unknown_signing_key",
        "the manifest is signed with key " + *key_id + ", which this agent does not trust");
  }
  auto verified = crypto::Ed25519Verify(*pem, manifest_bytes, signature);
  if (!verified.ok()) {
    if (verified.error().code == "bad_signature") {
      return PermanentError(ErrorKind::kPermissionDenied, "bad_signature",
                            "the manifest's signature does not verify with key " + *key_id);
    }
    return verified.error();
  }
  auto manifest = wire::ParseManifest(manifest_bytes);
  if (!manifest.ok()) return manifest.error().WithRetry(Retry::kPermanent);  // signed: never parses
  return manifest;
}

Status ManifestVerifier::CheckVersion(const wire::VariantManifest& manifest,
                                      std::optional<std::int64_t> installed_version,
                                      std::string_view device_id, std::int64_t now_s) {
  if (manifest.rollback) {
    // Checked even when the version is newer: a permission for someone else is not ours to use.
    if (manifest.device_id != device_id) {
      return PermanentError(ErrorKind::kPermissionDenied, "rollback_not_for_device",
                            "the signed rollback to variant " + manifest.variant_id +
                                " is for another device");
    }
    if (now_s >= manifest.expires_at) {
      // The server signs a fresh permission on every manifest request, so fetching again may
      // help; a clock far off the server's will not, hence limited.
      return MakeError(ErrorKind::kPermissionDenied, "rollback_expired",
                       "the signed rollback to variant " + manifest.variant_id + " expired at " +
                           std::to_string(manifest.expires_at) + " (unix seconds), now is " +
                           std::to_string(now_s),
                       Retry::kLimited);
    }
    return Ok();
  }
  if (!installed_version || manifest.version > *installed_version) return Ok();
  return PermanentError(ErrorKind::kConflict, "version_not_newer",
                        "variant " + manifest.variant_id + " has version " +
                            std::to_string(manifest.version) + ", not newer than the installed " +
                            std::to_string(*installed_version) + ", and is not a signed rollback");
}

Status ManifestVerifier::CheckPayload(const wire::VariantManifest& manifest,
                                      const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return MakeError(ErrorKind::kIo, "payload_unreadable", path + ": " + std::strerror(errno));
  }
  // Bytes that differ from the signed manifest are refused, but fetching them again may fix it
  // (damaged on the way or on the server's disk): a limited retry.
  if (st.st_size != manifest.payload.size_bytes) {
    return MakeError(ErrorKind::kPermissionDenied, "payload_size_mismatch",
                     path + " holds " + std::to_string(st.st_size) + " bytes, the manifest says " +
                         std::to_string(manifest.payload.size_bytes),
                     Retry::kLimited);
  }
  EP_ASSIGN_OR_RETURN(auto digest, crypto::Sha256FileHex(path));
  if (digest != manifest.payload.sha256) {
    return MakeError(
        ErrorKind::kPermissionDenied, "payload_digest_mismatch",
        path + " has SHA-256 " + digest + ", the manifest says " + manifest.payload.sha256,
        Retry::kLimited);
  }
  return Ok();
}

}  // namespace edgeprune::agent
