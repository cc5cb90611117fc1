#include "test_pki.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <stdexcept>

namespace edgeprune::testing {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;

[[noreturn]] void Fail(const std::string& what) {
  char buf[256] = "no OpenSSL error";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof(buf));
  throw std::runtime_error("test PKI: " + what + ": " + buf);
}

void Check(int ok, const std::string& what) {
  if (ok != 1) Fail(what);
}

PkeyPtr NewKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) Fail("EC key generation");
  return key;
}

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) Fail("extension " + value);
  Check(X509_add_ext(cert, ext, -1), "adding extension " + value);
  X509_EXTENSION_free(ext);
}

void WritePem(const std::string& path, mode_t mode, const std::function<int(FILE*)>& write) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("test PKI: cannot write " + path);
  ::chmod(path.c_str(), mode);
  int ok = write(f);
  std::fclose(f);
  Check(ok, "writing " + path);
}

PkeyPtr ReadKey(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("test PKI: cannot read " + path);
  PkeyPtr key(PEM_read_PrivateKey(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!key) Fail("reading key " + path);
  return key;
}

X509Ptr ReadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("test PKI: cannot read " + path);
  X509Ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!cert) Fail("reading certificate " + path);
  return cert;
}

}  // namespace

CertFiles IssueCertificate(const CertSpec& spec, const CertFiles& issuer,
                           const std::string& out_prefix) {
  PkeyPtr key = NewKey();
  X509Ptr cert(X509_new());
  if (!cert) Fail("X509_new");
  Check(X509_set_version(cert.get(), 2), "version");
  unsigned char serial[16];
  Check(RAND_bytes(serial, sizeof(serial)), "serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  ASN1_INTEGER* asn_serial = BN_to_ASN1_INTEGER(bn, nullptr);
  Check(X509_set_serialNumber(cert.get(), asn_serial), "serial");
  ASN1_INTEGER_free(asn_serial);
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(spec.not_before_offset_s));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(spec.not_after_offset_s));
  Check(X509_set_pubkey(cert.get(), key.get()), "pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  Check(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("edgeprune tests"), -1,
                                   -1, 0),
        "O");
  Check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                   -1, -1, 0),
        "CN");

  const bool self_signed = issuer.cert.empty();
  X509Ptr issuer_cert = self_signed ? nullptr : ReadCert(issuer.cert);
  PkeyPtr issuer_key = self_signed ? nullptr : ReadKey(issuer.key);
  X509* signer_cert = self_signed ? cert.get() : issuer_cert.get();
  EVP_PKEY* signer_key = self_signed ? key.get() : issuer_key.get();
  Check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer_cert)), "issuer");

  AddExt(cert.get(), signer_cert, NID_subject_key_identifier, "hash");
  AddExt(cert.get(), signer_cert, NID_authority_key_identifier, "keyid:always");
  if (spec.is_ca) {
    AddExt(cert.get(), signer_cert, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), signer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(cert.get(), signer_cert, NID_basic_constraints, "critical,CA:FALSE");
    AddExt(cert.get(), signer_cert, NID_key_usage, "critical,digitalSignature,keyAgreement");
    std::string eku;
    if (spec.server_auth) eku = "serverAuth";
    if (spec.client_auth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
    if (!eku.empty()) AddExt(cert.get(), signer_cert, NID_ext_key_usage, eku);
  }
  std::string san;
  for (const auto& d : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + d;
  for (const auto& ip : spec.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) AddExt(cert.get(), signer_cert, NID_subject_alt_name, san);

  if (X509_sign(cert.get(), signer_key, EVP_sha256()) == 0) Fail("signing " + spec.common_name);

  CertFiles out{out_prefix + ".pem", out_prefix + ".key"};
  WritePem(out.cert, 0644, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
  WritePem(out.key, 0600, [&](FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return out;
}

TestPki MakeTestPki(const std::string& dir) {
  const std::string d = dir + "/";
  TestPki pki;
  CertSpec ca{.common_name = "Test Server CA", .is_ca = true};
  pki.ca = IssueCertificate(ca, {}, d + "ca");
  ca.common_name = "Wrong CA";
  pki.wrong_ca = IssueCertificate(ca, {}, d + "wrong-ca");
  ca.common_name = "Test Device CA";
  pki.client_ca = IssueCertificate(ca, {}, d + "client-ca");

  pki.server = IssueCertificate(
      {.common_name = "localhost", .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}},
      pki.ca, d + "server");
  pki.mismatched_server = IssueCertificate(
      {.common_name = "other.example", .dns_names = {"other.example"}}, pki.ca,
      d + "mismatched-server");

  CertSpec client{.common_name = "device-test-1", .server_auth = false, .client_auth = true};
  pki.client = IssueCertificate(client, pki.client_ca, d + "client");
  client.common_name = "device-rogue";
  pki.wrong_client = IssueCertificate(client, pki.wrong_ca, d + "wrong-client");
  client.common_name = "device-expired";
  client.not_before_offset_s = -10 * 86400;
  client.not_after_offset_s = -86400;
  pki.expired_client = IssueCertificate(client, pki.client_ca, d + "expired-client");
  return pki;
}

}  // namespace edgeprune::testing
