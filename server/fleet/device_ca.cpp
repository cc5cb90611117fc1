#include "server/fleet/device_ca.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

#include <cstring>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/openssl.hpp"
#include "edgeprune/common/tls.hpp"

namespace edgeprune::fleet {
namespace {

using openssl::BioPtr;
using openssl::BnPtr;
using openssl::MemBio;
using openssl::PkeyPtr;
using openssl::ReqPtr;
using openssl::X509Ptr;
using KeyPtr = openssl::PkeyPtr;

Error CsrError(const std::string& why) {
  ERR_clear_error();
  return MakeError(ErrorKind::kInvalidArgument, "invalid_csr", "certificate request " + why);
}

Result<std::string> DerFingerprint(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509(cert, &der);
  if (len <= 0) return MakeError(ErrorKind::kInternal, "x509_encode_failed", openssl::LastError());
  std::string hex = crypto::Sha256Hex(std::string_view(reinterpret_cast<char*>(der), len));
  OPENSSL_free(der);
  return hex;
}

bool AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

}  // namespace

struct DeviceCa::Impl {
  X509Ptr cert;
  KeyPtr key;
  std::string cert_pem;
};

DeviceCa::DeviceCa(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceCa::~DeviceCa() = default;
DeviceCa::DeviceCa(DeviceCa&&) noexcept = default;
DeviceCa& DeviceCa::operator=(DeviceCa&&) noexcept = default;

const std::string& DeviceCa::certificate_pem() const { return impl_->cert_pem; }

Result<DeviceCa> DeviceCa::Load(const std::string& cert_path, const std::string& key_path) {
  auto cert = fs::ReadFile(cert_path, 1024 * 1024);
  if (!cert.ok()) return cert.error().WithContext("device CA certificate");
  auto key = fs::ReadFile(key_path, 1024 * 1024);
  if (!key.ok()) return key.error().WithContext("device CA key");
  // The same check as the signing key's: whoever reads this key can mint device identities.
  struct stat st {};
  if (::stat(key_path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    log::Get("fleet")->warn("device CA key {} is readable by group or others (mode {:o}); make it 0600",
                            key_path, st.st_mode & 0777);
  }
  auto ca = FromPem(*cert, *key);
  if (!ca.ok()) return ca.error().WithContext(cert_path + " / " + key_path);
  return ca;
}

Result<DeviceCa> DeviceCa::FromPem(const std::string& cert_pem, const std::string& key_pem) {
  auto impl = std::make_unique<Impl>();
  auto cbio = MemBio(cert_pem);
  impl->cert.reset(PEM_read_bio_X509(cbio.get(), nullptr, nullptr, nullptr));
  if (!impl->cert) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_ca",
                     "device CA certificate is not a PEM certificate: " + openssl::LastError());
  }
  auto kbio = MemBio(key_pem);
  impl->key.reset(PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
  if (!impl->key) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_ca",
                     "device CA key is not a PEM private key: " + openssl::LastError());
  }
  if (X509_check_private_key(impl->cert.get(), impl->key.get()) != 1) {
    ERR_clear_error();
    return MakeError(ErrorKind::kInvalidArgument, "invalid_ca",
                     "device CA key does not match its certificate");
  }
  impl->cert_pem = cert_pem;
  return DeviceCa(std::move(impl));
}

Result<IssuedCertificate> DeviceCa::Issue(const std::string& csr_pem, const std::string& device_id,
                                          std::chrono::seconds validity, std::int64_t now) const {
  auto bio = MemBio(csr_pem);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return CsrError("is not a PEM PKCS#10 request");
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());  // owned by req
  if (!pub) return CsrError("carries no public key");
  if (X509_REQ_verify(req.get(), pub) != 1) return CsrError("has an invalid self-signature");
  char group[64] = {0};
  size_t group_len = 0;
  if (EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC ||
      EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof(group), &group_len) != 1 ||
      std::strcmp(group, "prime256v1") != 0) {
    return CsrError("must carry an EC P-256 public key");
  }
  const std::string public_key_sha256 = tls::PublicKeySha256(pub);

  X509Ptr cert(X509_new());
  if (!cert) return MakeError(ErrorKind::kInternal, "x509_failed", openssl::LastError());
  X509_set_version(cert.get(), 2);
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) {
    return MakeError(ErrorKind::kInternal, "rand_failed", openssl::LastError());
  }
  serial_bytes[0] &= 0x7f;  // positive
  serial_bytes[0] |= 0x01;  // no leading zero byte: the hex stays 32 chars
  BnPtr bn(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
  ASN1_INTEGER* serial = X509_get_serialNumber(cert.get());
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), serial)) {
    return MakeError(ErrorKind::kInternal, "x509_failed", openssl::LastError());
  }
  const std::int64_t not_before = now - 60;  // tolerate small clock skew on the device
  const std::int64_t not_after = now + validity.count();
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(not_after));

  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("edgeprune device"), -1, -1, 0);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(device_id.c_str()), -1, -1,
                                 0) != 1) {
    return MakeError(ErrorKind::kInternal, "x509_failed", "cannot set subject: " + openssl::LastError());
  }
  X509_set_issuer_name(cert.get(), X509_get_subject_name(impl_->cert.get()));
  X509_set_pubkey(cert.get(), pub);
  if (!AddExtension(cert.get(), impl_->cert.get(), NID_basic_constraints, "critical,CA:FALSE") ||
      !AddExtension(cert.get(), impl_->cert.get(), NID_key_usage, "critical,digitalSignature") ||
      !AddExtension(cert.get(), impl_->cert.get(), NID_ext_key_usage, "clientAuth") ||
      !AddExtension(cert.get(), impl_->cert.get(), NID_subject_key_identifier, "hash") ||
      !AddExtension(cert.get(), impl_->cert.get(), NID_authority_key_identifier, "keyid")) {
    return MakeError(ErrorKind::kInternal, "x509_failed",
                     "cannot add certificate extensions: " + openssl::LastError());
  }
  // Ed25519 CA keys sign with no digest; EC/RSA keys with SHA-256.
  const EVP_MD* md = EVP_PKEY_get_base_id(impl_->key.get()) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), impl_->key.get(), md) <= 0) {
    return MakeError(ErrorKind::kInternal, "x509_sign_failed", openssl::LastError());
  }

  IssuedCertificate out;
  BioPtr mem(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(mem.get(), cert.get());
  out.pem = openssl::MemBioText(mem.get());
  out.serial_hex = crypto::HexEncode(std::string_view(reinterpret_cast<char*>(serial_bytes), 16));
  EP_ASSIGN_OR_RETURN(out.fingerprint_sha256, DerFingerprint(cert.get()));
  out.public_key_sha256 = public_key_sha256;
  out.not_before = not_before;
  out.not_after = not_after;
  return out;
}

Result<std::string> CertificateFingerprint(const std::string& cert_pem) {
  auto bio = MemBio(cert_pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_certificate",
                     "not a PEM certificate: " + openssl::LastError());
  }
  return DerFingerprint(cert.get());
}

}  // namespace edgeprune::fleet
