#include "server/catalog/signing_keyring.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
    // Replicas sharing a data directory may start together and each find no key. The key is
    // written to a private temp file and link()ed into place, which fails when another process
    // got there first: exactly one key is ever created, and every replica loads that one.
    EP_ASSIGN_OR_RETURN(crypto::Ed25519KeyPair pair, crypto::GenerateEd25519());
    const std::string temp = private_key_path + ".new-" + crypto::RandomToken(8);
    EP_RETURN_IF_ERROR(fs::WriteFileAtomic(temp, pair.private_pem, 0600));
    const bool created = ::link(temp.c_str(), private_key_path.c_str()) == 0;
    const int link_errno = errno;
    ::unlink(temp.c_str());
    if (!created && link_errno != EEXIST) {
      return MakeError(ErrorKind::kIo, "io_error",
                       "creating the signing key " + private_key_path + ": " +
                           std::strerror(link_errno));
    }
    if (created) log::Get("signing")->info("created manifest signing key {}", private_key_path);
  }
  EP_ASSIGN_OR_RETURN(SigningKeyring keyring, Load(private_key_path));
  // The public half is derived from the key just loaded, so it always matches it (also when an
  // earlier start stopped between writing the two files).
  const std::string public_path = PublicPathFor(private_key_path);
  auto existing = fs::ReadFile(public_path, 64 * 1024);
  if (!existing.ok() || *existing != keyring.public_pem()) {
    EP_RETURN_IF_ERROR(fs::WriteFileAtomic(public_path, keyring.public_pem(), 0644));
  }
  return keyring;
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
