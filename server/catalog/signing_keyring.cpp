#include "server/catalog/signing_keyring.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::catalog {
namespace {

std::string PublicPathFor(const std::string& private_path) {
  const std::string suffix = ".key";
  if (private_path.size() > suffix.size() &&
      private_path.compare(private_path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return private_path.substr(0, private_path.size() - suffix.size()) + ".pub";
  }
  return private_path + ".pub";
}

}  // namespace

Result<SigningKeyring> SigningKeyring::FromPem(const std::string& private_pem) {
  EP_ASSIGN_OR_RETURN(std::string public_pem, crypto::Ed25519PublicFromPrivate(private_pem));
  EP_ASSIGN_OR_RETURN(std::string key_id, crypto::Ed25519KeyId(public_pem));
  return SigningKeyring(private_pem, std::move(public_pem), std::move(key_id));
}

Result<SigningKeyring> SigningKeyring::Load(const std::string& private_key_path) {
  if (private_key_path.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_key",
                     "no signing key path configured (signing.key)");
  }
  auto pem = crypto::LoadEd25519PrivatePem(private_key_path);
  if (!pem.ok()) return pem.error().WithContext("loading the manifest signing key");
  struct stat st {};
  if (::stat(private_key_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    log::Get("signing")->warn("signing key {} is readable by group or others (mode {:o})",
                              private_key_path, st.st_mode & 0777);
  }
  auto keyring = FromPem(*pem);
  if (!keyring.ok()) return keyring.error().WithContext("loading '" + private_key_path + "'");
  return keyring;
}

Result<SigningKeyring> SigningKeyring::LoadOrCreate(const std::string& private_key_path) {
  struct stat st {};
  if (!private_key_path.empty() && ::stat(private_key_path.c_str(), &st) != 0 &&
      errno == ENOENT) {
    EP_ASSIGN_OR_RETURN(crypto::Ed25519KeyPair pair, crypto::GenerateEd25519());
    EP_RETURN_IF_ERROR(fs::WriteFileAtomic(private_key_path, pair.private_pem, 0600));
    EP_RETURN_IF_ERROR(fs::WriteFileAtomic(PublicPathFor(private_key_path), pair.public_pem, 0644));
    log::Get("signing")->info("created manifest signing key {}", private_key_path);
  }
  return Load(private_key_path);
}

Result<SignedManifest> SigningKeyring::Sign(wire::VariantManifest manifest) const {
  manifest.key_id = key_id_;
  return SignBytes(wire::SerializeManifest(manifest));
}

Result<SignedManifest> SigningKeyring::SignBytes(std::string manifest_json) const {
  auto signature = crypto::Ed25519Sign(private_pem_, manifest_json);
  if (!signature.ok()) return signature.error().WithContext("signing a variant manifest");
  SignedManifest out;
  out.signature_base64 = crypto::Base64Encode(*signature);
  out.signature = std::move(signature).value();
  out.manifest_json = std::move(manifest_json);
  out.key_id = key_id_;
  return out;
}

Status SigningKeyring::Verify(std::string_view manifest_json, std::string_view signature) const {
  return crypto::Ed25519Verify(public_pem_, manifest_json, signature);
}

}  // namespace edgeprune::catalog
