#pragma once
// The server's variant-manifest signer: one Ed25519 private key (PEM, PKCS#8) loaded from the
// path in config (`signing.key`, e.g. deploy/pki's signing.key) signs the exact bytes of each
// manifest. The agent trusts the matching public key (signing.pub) and checks the key id.
//
// Thread-safety: immutable after loading; Sign() may be called from any thread.

#include <string>

#include "edgeprune/common/result.hpp"
#include "edgeprune/common/wire/manifest.hpp"

namespace edgeprune::catalog {

struct SignedManifest {
  std::string manifest_json;     // the exact bytes that were signed and are shipped
  std::string signature;         // raw 64-byte Ed25519 signature
  std::string signature_base64;  // the same, standard base64 (for headers and JSON)
  std::string key_id;            // crypto::Ed25519KeyId of the signing key
};

class SigningKeyring {
 public:
  // Loads the private key from a PEM file; errors name the path ("invalid_key" when the file is
  // not an Ed25519 private key). A key readable by group or others is logged as a warning.
  static Result<SigningKeyring> Load(const std::string& private_key_path);
  // Loads `path`, or when it does not exist creates a fresh key there (mode 0600) and its public
  // half next to it as <path minus .key>.pub. For first start and quickstart.
  static Result<SigningKeyring> LoadOrCreate(const std::string& private_key_path);
  static Result<SigningKeyring> FromPem(const std::string& private_pem);

  // Stamps the manifest with this key's id, serializes it and signs those bytes.
  Result<SignedManifest> Sign(wire::VariantManifest manifest) const;
  // Signs bytes as they are (already serialized elsewhere).
  Result<SignedManifest> SignBytes(std::string manifest_json) const;
  // Checks a signature against this key: "bad_signature" (kPermissionDenied) when it fails.
  Status Verify(std::string_view manifest_json, std::string_view signature) const;

  const std::string& key_id() const { return key_id_; }
  const std::string& public_pem() const { return public_pem_; }

 private:
  SigningKeyring(std::string private_pem, std::string public_pem, std::string key_id)
      : private_pem_(std::move(private_pem)),
        public_pem_(std::move(public_pem)),
        key_id_(std::move(key_id)) {}

  std::string private_pem_;
  std::string public_pem_;
  std::string key_id_;
};

}  // namespace edgeprune::catalog
