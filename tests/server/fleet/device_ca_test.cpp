#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "edgeprune/common/fs.hpp"
#include "server/fleet/device_ca.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"
#include "server/support/fleet_test_csr.hpp"

namespace edgeprune::fleet {
namespace {

class DeviceCaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = edgeprune::testing::MakeTestPki(dir_.path());
    auto ca = DeviceCa::Load(pki_.client_ca.cert, pki_.client_ca.key);
    ASSERT_TRUE(ca.ok()) << ca.error().ToString();
    ca_ = std::make_unique<DeviceCa>(std::move(ca).value());
  }
  edgeprune::testing::TempDir dir_;
  edgeprune::testing::TestPki pki_;
  std::unique_ptr<DeviceCa> ca_;
};

TEST_F(DeviceCaTest, IssuesAShortLivedClientCertificateNamingTheDevice) {
  auto csr = std::make_optional(fleet_test::MakeKeyAndCsr().csr_pem);
  const std::int64_t now = 1800000000;
  auto cert = ca_->Issue(*csr, "dev-abc", std::chrono::hours(24 * 30), now);
  ASSERT_TRUE(cert.ok()) << cert.error().ToString();
  EXPECT_EQ(cert->serial_hex.size(), 32u);
  EXPECT_EQ(cert->fingerprint_sha256.size(), 64u);
  EXPECT_EQ(cert->not_after - now, 30 * 24 * 3600);
  EXPECT_EQ(fleet_test::SubjectCnOf(cert->pem), "dev-abc") << "the CA, not the CSR, names the device";
  EXPECT_EQ(CertificateFingerprint(cert->pem).value(), cert->fingerprint_sha256);

  // The certificate chains to the device CA and is for client authentication only.
  BIO* bio = BIO_new_mem_buf(cert->pem.data(), static_cast<int>(cert->pem.size()));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(x, nullptr);
  auto ca_pem = fs::ReadFile(pki_.client_ca.cert).value();
  bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EXPECT_EQ(X509_verify(x, X509_get0_pubkey(ca)), 1);
  EXPECT_TRUE(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
  EXPECT_FALSE(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
  X509_free(ca);
  X509_free(x);

  auto second = ca_->Issue(*csr, "dev-abc", std::chrono::hours(1), now);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->serial_hex, cert->serial_hex) << "serials are random";
}

TEST_F(DeviceCaTest, RejectsMalformedAndNonP256Requests) {
  auto bad = ca_->Issue("garbage", "dev-x", std::chrono::hours(1), 1800000000);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_csr");
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);

  auto p384 = ca_->Issue(fleet_test::MakeKeyAndCsr("P-384").csr_pem, "dev-x", std::chrono::hours(1),
                         1800000000);
  ASSERT_FALSE(p384.ok());
  EXPECT_NE(p384.error().message.find("P-256"), std::string::npos);

  // An RSA key is refused.
  EVP_PKEY* rsa = EVP_RSA_gen(2048);
  ASSERT_NE(rsa, nullptr);
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, rsa);
  X509_REQ_sign(req, rsa, EVP_sha256());
  BIO* mem = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(mem, req);
  char* data = nullptr;
  long len = BIO_get_mem_data(mem, &data);
  std::string rsa_csr(data, static_cast<std::size_t>(len));
  BIO_free(mem);
  X509_REQ_free(req);
  EVP_PKEY_free(rsa);
  auto refused = ca_->Issue(rsa_csr, "dev-x", std::chrono::hours(1), 1800000000);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("P-256"), std::string::npos);

  // A CSR whose signature does not match its key (tampered) is refused.
  auto csr = fleet_test::MakeKeyAndCsr().csr_pem;
  auto pos = csr.find("\n", 40) + 10;
  csr[pos] = csr[pos] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(ca_->Issue(csr, "dev-x", std::chrono::hours(1), 1800000000).ok());
}

TEST_F(DeviceCaTest, LoadNamesTheBadFileAndRefusesAMismatchedKey) {
  auto missing = DeviceCa::Load(dir_.File("nope.pem"), pki_.client_ca.key);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope.pem"), std::string::npos);
  auto mismatch = DeviceCa::Load(pki_.client_ca.cert, pki_.wrong_ca.key);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("does not match"), std::string::npos);
}

}  // namespace
}  // namespace edgeprune::fleet
