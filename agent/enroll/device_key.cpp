#include "agent/enroll/device_key.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <memory>

namespace edgeprune::agent {
namespace {

struct BioFree { void operator()(BIO* b) const { BIO_free(b); } };
struct KeyFree { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
struct ReqFree { void operator()(X509_REQ* r) const { X509_REQ_free(r); } };
struct CertFree { void operator()(X509* c) const { X509_free(c); } };
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string Reason() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

std::string Drain(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Result<std::int64_t> ToUnix(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_certificate", "unreadable validity time");
  }
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace

Result<std::string> GenerateDeviceKey() {
  std::unique_ptr<EVP_PKEY, KeyFree> key(EVP_EC_gen("P-256"));
  if (!key) return MakeError(ErrorKind::kInternal, "keygen_failed", "EC P-256 keygen: " + Reason());
  BioPtr mem(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(mem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return MakeError(ErrorKind::kInternal, "keygen_failed", "encoding the key: " + Reason());
  }
  return Drain(mem.get());
}

Result<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name) {
  BioPtr in(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  std::unique_ptr<EVP_PKEY, KeyFree> key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    ERR_clear_error();
    return MakeError(ErrorKind::kInvalidArgument, "invalid_key",
                     "the device key is not an EC private key in PEM");
  }
  std::unique_ptr<X509_REQ, ReqFree> req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return MakeError(ErrorKind::kInternal, "csr_failed", "signing the CSR: " + Reason());
  }
  BioPtr mem(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(mem.get(), req.get());
  return Drain(mem.get());
}

Result<CertificateInfo> InspectCertificate(const std::string& cert_pem) {
  BioPtr in(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  std::unique_ptr<X509, CertFree> cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return MakeError(ErrorKind::kInvalidArgument, "invalid_certificate",
                     "the device certificate is not a PEM certificate");
  }
  CertificateInfo info;
  char cn[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn,
                                sizeof(cn)) > 0) {
    info.subject_cn = cn;
  }
  EP_ASSIGN_OR_RETURN(info.not_before, ToUnix(X509_get0_notBefore(cert.get())));
  EP_ASSIGN_OR_RETURN(info.not_after, ToUnix(X509_get0_notAfter(cert.get())));
  return info;
}

}  // namespace edgeprune::agent
