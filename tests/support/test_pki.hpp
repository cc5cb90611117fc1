#pragma once
// A throw-away PKI for tests, made with the OpenSSL C API (no CLI) in a directory you own,
// usually a TempDir. EC P-256 keys (fast to make), SHA-256 signatures, PEM files, keys 0600.
//
//   edgeprune::testing::TempDir dir;
//   auto pki = edgeprune::testing::MakeTestPki(dir.path());
//   tls::ServerTlsOptions{pki.server_cert, pki.server_key, pki.client_ca_cert, kRequired};
//
// Throws std::runtime_error when OpenSSL fails (a broken test environment, not a test result).
// Thread-safety: free functions; safe to call from several tests at once with distinct dirs.

#include <cstdint>
#include <string>
#include <vector>

namespace edgeprune::testing {

struct CertFiles {
  std::string cert;  // PEM certificate
  std::string key;   // PEM PKCS#8 private key, mode 0600
};

struct TestPki {
  CertFiles ca;                 // "Test Server CA": signs server certificates
  CertFiles wrong_ca;           // "Wrong CA": trusted by nobody in the good setup
  CertFiles server;             // CN localhost, SAN DNS:localhost + IP:127.0.0.1, signed by ca
  CertFiles mismatched_server;  // CN other.example, SAN DNS:other.example only, signed by ca
  CertFiles client_ca;          // "Test Device CA": signs client (device) certificates
  CertFiles client;             // CN device-test-1, clientAuth, signed by client_ca
  CertFiles wrong_client;       // CN device-rogue, signed by wrong_ca
  CertFiles expired_client;     // CN device-expired, signed by client_ca, expired a day ago

  // Convenience accessors in the shape tls::ServerTlsOptions / ClientTlsOptions take.
  const std::string& ca_cert() const { return ca.cert; }
  const std::string& server_cert() const { return server.cert; }
  const std::string& server_key() const { return server.key; }
  const std::string& client_ca_cert() const { return client_ca.cert; }
};

// Writes every file of a TestPki into dir (which must exist) and returns their paths.
TestPki MakeTestPki(const std::string& dir);

struct CertSpec {
  std::string common_name{};
  std::vector<std::string> dns_names{};  // subjectAltName DNS entries
  std::vector<std::string> ip_addresses{};  // subjectAltName IP entries
  bool is_ca = false;
  bool server_auth = true;   // extendedKeyUsage serverAuth (leaf only)
  bool client_auth = false;  // extendedKeyUsage clientAuth (leaf only)
  std::int64_t not_before_offset_s = -3600;       // relative to now
  std::int64_t not_after_offset_s = 365 * 86400;  // relative to now
};

// Issues a certificate for a fresh key and writes it to out_prefix + ".pem" / ".key". With an
// empty issuer the certificate is self-signed (a root CA).
CertFiles IssueCertificate(const CertSpec& spec, const CertFiles& issuer,
                           const std::string& out_prefix);

}  // namespace edgeprune::testing
