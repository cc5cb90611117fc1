#include "agent/enroll/device_key.hpp"

#include <openssl/pem.h>

#include "edgeprune/common/openssl.hpp"

namespace edgeprune::agent {
namespace {

using openssl::BioPtr;

Result<std::int64_t> ToUnix(const ASN1_TIME* t) {
  auto unix_s = openssl::UnixTime(t);
  if (!unix_s) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_certificate", "unreadable validity time");
  }
  return *unix_s;
}

}  // namespace

Result<std::string> GenerateDeviceKey() {
  openssl::PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) {
    return MakeError(ErrorKind::kInternal, "keygen_failed", "EC P-256 keygen: " + openssl::LastError());
  }
  BioPtr mem(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(mem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return MakeError(ErrorKind::kInternal, "keygen_failed", "encoding the key: " + openssl::LastError());
  }
  return openssl::MemBioText(mem.get());
}

Result<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name) {
  BioPtr in = openssl::MemBio(key_pem);
  openssl::PkeyPtr key(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  if (!key || EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    ERR_clear_error();
    return MakeError(ErrorKind::kInvalidArgument, "invalid_key",
                     "the device key is not an EC private key in PEM");
  }
  openssl::ReqPtr req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  X509_REQ_set_pubkey(req.get(), key.get());
  if (X509_REQ_sign(req.get(), key.get(), EVP_sha256()) <= 0) {
    return MakeError(ErrorKind::kInternal, "csr_failed", "signing the CSR: " + openssl::LastError());
  }
  BioPtr mem(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(mem.get(), req.get());
  return openssl::MemBioText(mem.get());
}

Result<CertificateInfo> InspectCertificate(const std::string& cert_pem) {
  BioPtr in = openssl::MemBio(cert_pem);
  openssl::X509Ptr cert(PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr));
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
