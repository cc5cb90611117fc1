#include "edgeprune/common/crypto.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/openssl.hpp"

namespace edgeprune::crypto {
namespace {

// Largest key file we accept; a PEM Ed25519 key is ~120 bytes.
constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;

using openssl::BioPtr;
using openssl::MdCtxPtr;
using openssl::PkeyPtr;

Error InvalidKey(const std::string& what) {
  return MakeError(ErrorKind::kInvalidArgument, "invalid_key", what + " (" + openssl::LastError() + ")");
}

Result<PkeyPtr> ParsePrivate(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return MakeError(ErrorKind::kInternal, "openssl_failed", "BIO_new_mem_buf failed");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return InvalidKey("text is not a PEM private key");
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_key",
                     "private key is not an Ed25519 key");
  }
  return key;
}

Result<PkeyPtr> ParsePublic(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return MakeError(ErrorKind::kInternal, "openssl_failed", "BIO_new_mem_buf failed");
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return InvalidKey("text is not a PEM public key");
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_key", "public key is not an Ed25519 key");
  }
  return key;
}

Result<std::string> PublicPemOf(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return MakeError(ErrorKind::kInternal, "openssl_failed",
                     "writing public key PEM failed: " + openssl::LastError());
  }
  return openssl::MemBioText(bio.get());
}

constexpr char kB64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64With(std::string_view in, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  std::size_t rest = in.size() - i;
  if (rest == 1) {
    std::uint32_t v = byte(i) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

struct Sha256::Impl {
  MdCtxPtr ctx{EVP_MD_CTX_new()};
  void Reset() {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
      // Only on allocation failure or a broken OpenSSL: a programmer/environment error.
      throw std::runtime_error("EVP_DigestInit_ex(sha256) failed");
    }
  }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) { impl_->Reset(); }
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(std::string_view data) { Update(data.data(), data.size()); }

void Sha256::Update(const void* data, std::size_t size) {
  if (size != 0) EVP_DigestUpdate(impl_->ctx.get(), data, size);
}

std::string Sha256::Digest() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx.get(), md.data(), &len);
  impl_->Reset();
  return std::string(reinterpret_cast<const char*>(md.data()), len);
}

std::string Sha256::HexDigest() { return HexEncode(Digest()); }

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

Result<std::string> Sha256FileHex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(ErrorKind::kIo, "file_unreadable",
                     "cannot open '" + path + "': " + std::strerror(errno));
  }
  Sha256 h;
  std::array<char, 64 * 1024> buf{};
  while (in) {
    in.read(buf.data(), buf.size());
    h.Update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) {
    return MakeError(ErrorKind::kIo, "file_unreadable", "read error on '" + path + "'");
  }
  return h.HexDigest();
}

Result<Ed25519KeyPair> GenerateEd25519() {
  openssl::PkeyCtxPtr ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return MakeError(ErrorKind::kInternal, "openssl_failed",
                     "Ed25519 key generation failed: " + openssl::LastError());
  }
  PkeyPtr key(raw);
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    return MakeError(ErrorKind::kInternal, "openssl_failed",
                     "writing private key PEM failed: " + openssl::LastError());
  }
  Ed25519KeyPair pair;
  pair.private_pem = openssl::MemBioText(bio.get());
  EP_ASSIGN_OR_RETURN(pair.public_pem, PublicPemOf(key.get()));
  return pair;
}

Result<std::string> Ed25519Sign(const std::string& private_pem, std::string_view message) {
  EP_ASSIGN_OR_RETURN(PkeyPtr key, ParsePrivate(private_pem));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  std::size_t sig_len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return MakeError(ErrorKind::kInternal, "openssl_failed",
                     "Ed25519 signing failed: " + openssl::LastError());
  }
  sig.resize(sig_len);
  return sig;
}

Status Ed25519Verify(const std::string& public_pem, std::string_view message,
                     std::string_view signature) {
  EP_ASSIGN_OR_RETURN(PkeyPtr key, ParsePublic(public_pem));
  if (signature.size() != 64) {
    return MakeError(ErrorKind::kPermissionDenied, "bad_signature",
                     "signature is " + std::to_string(signature.size()) +
                         " bytes, an Ed25519 signature is 64");
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return MakeError(ErrorKind::kInternal, "openssl_failed",
                     "Ed25519 verify init failed: " + openssl::LastError());
  }
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                            signature.size(),
                            reinterpret_cast<const unsigned char*>(message.data()), message.size());
  ERR_clear_error();
  if (rc != 1) {
    return MakeError(ErrorKind::kPermissionDenied, "bad_signature",
                     "Ed25519 signature does not match the message and key");
  }
  return Ok();
}

Result<std::string> Ed25519KeyId(const std::string& public_pem) {
  EP_ASSIGN_OR_RETURN(PkeyPtr key, ParsePublic(public_pem));
  std::array<unsigned char, 32> raw{};
  std::size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), raw.data(), &len) != 1) {
    return MakeError(ErrorKind::kInternal, "openssl_failed",
                     "reading raw public key failed: " + openssl::LastError());
  }
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(raw.data()), len)).substr(0, 16);
}

Result<std::string> Ed25519PublicFromPrivate(const std::string& private_pem) {
  EP_ASSIGN_OR_RETURN(PkeyPtr key, ParsePrivate(private_pem));
  return PublicPemOf(key.get());
}

Result<std::string> LoadEd25519PrivatePem(const std::string& path) {
  EP_ASSIGN_OR_RETURN(std::string pem, fs::ReadFile(path, kMaxKeyFileBytes));
  auto key = ParsePrivate(pem);
  if (!key.ok()) return key.error().WithContext("loading '" + path + "'");
  return pem;
}

Result<std::string> LoadEd25519PublicPem(const std::string& path) {
  EP_ASSIGN_OR_RETURN(std::string pem, fs::ReadFile(path, kMaxKeyFileBytes));
  auto key = ParsePublic(pem);
  if (!key.ok()) return key.error().WithContext("loading '" + path + "'");
  return pem;
}

std::string RandomToken(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (bytes != 0 &&
      RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    // A CSPRNG failure must never degrade into a guessable token.
    throw std::runtime_error("RAND_bytes failed: " + openssl::LastError());
  }
  return Base64UrlEncode(raw);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

Result<std::string> HexDecode(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_hex", "hex text has an odd length");
  }
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_hex",
                       "non-hex character at offset " + std::to_string(hi < 0 ? i : i + 1));
    }
    out += static_cast<char>((hi << 4) | lo);
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) { return Base64With(bytes, kB64Std, true); }
std::string Base64UrlEncode(std::string_view bytes) { return Base64With(bytes, kB64Url, false); }

Result<std::string> Base64Decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_base64", "base64 text has a bad length");
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    int v = B64Value(text[i]);
    if (v < 0) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_base64",
                       "invalid base64 character at offset " + std::to_string(i));
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

}  // namespace edgeprune::crypto
