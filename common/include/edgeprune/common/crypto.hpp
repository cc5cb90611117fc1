#pragma once
// Hashing, signatures and tokens, through OpenSSL's EVP interface only.
//
// SHA-256: streaming (Sha256) and one-shot (Sha256Hex, Sha256FileHex).
// Ed25519: keys travel as PEM (PKCS#8 private, SubjectPublicKeyInfo public); signatures are the
//   raw 64 bytes. A key id is the first 16 hex chars of SHA-256 over the raw 32-byte public key.
// Encoding: lower-case hex, standard base64 (with padding) and URL-safe base64 (no padding).
//
// Thread-safety: free functions are thread-safe; a Sha256 object is used by one thread at a time.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "edgeprune/common/result.hpp"

namespace edgeprune::crypto {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  void Update(const void* data, std::size_t size);
  // Raw 32-byte digest. Finishes the hash; the object then starts over empty.
  std::string Digest();
  // Lower-case hex of Digest().
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);
// Streams the file; error "file_unreadable" naming the path.
Result<std::string> Sha256FileHex(const std::string& path);

struct Ed25519KeyPair {
  std::string private_pem;
  std::string public_pem;
};

Result<Ed25519KeyPair> GenerateEd25519();
// Returns the raw 64-byte signature. Error "invalid_key" when the PEM is not an Ed25519 private key.
Result<std::string> Ed25519Sign(const std::string& private_pem, std::string_view message);
// Ok when the signature is valid; "bad_signature" (kPermissionDenied) when it is not;
// "invalid_key" when the PEM is not an Ed25519 public key.
Status Ed25519Verify(const std::string& public_pem, std::string_view message,
                     std::string_view signature);
// First 16 hex chars of SHA-256 over the raw public key.
Result<std::string> Ed25519KeyId(const std::string& public_pem);
// Derives the public PEM from a private PEM.
Result<std::string> Ed25519PublicFromPrivate(const std::string& private_pem);
// Read a PEM file and check it holds an Ed25519 key of the expected kind; errors name the path.
Result<std::string> LoadEd25519PrivatePem(const std::string& path);
Result<std::string> LoadEd25519PublicPem(const std::string& path);

// `bytes` random bytes from RAND_bytes, URL-safe base64 without padding (32 bytes → 43 chars).
// Throws std::runtime_error only if the CSPRNG fails: a broken system, never a guessable token.
std::string RandomToken(std::size_t bytes = 32);
// Compares in time that depends only on the lengths (CRYPTO_memcmp).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

std::string HexEncode(std::string_view bytes);
// Error "invalid_hex" on odd length or a non-hex character.
Result<std::string> HexDecode(std::string_view hex);
std::string Base64Encode(std::string_view bytes);
std::string Base64UrlEncode(std::string_view bytes);  // no padding
// Accepts standard and URL-safe alphabets, padded or not; error "invalid_base64" otherwise.
Result<std::string> Base64Decode(std::string_view text);

}  // namespace edgeprune::crypto
