#pragma once
// TLS contexts for the server and its clients, on boost::asio::ssl::context, with one policy:
// TLS 1.2 minimum, TLS 1.3 on, ECDHE + AEAD ciphers only for 1.2, no compression, no
// renegotiation. Every file problem (missing, not PEM, key not matching the certificate) is an
// Error naming the file and the reason.
//
// Thread-safety: building a context is thread-safe; a built context is shared read-only by
// every connection (OpenSSL SSL_CTX is safe for that once configured).

#include <boost/asio/ssl/context.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::tls {

// Whether the server asks connecting clients for a certificate.
enum class ClientCertMode {
  kNone,      // never asked
  kOptional,  // asked; a presented certificate must verify against client_ca_file, none is fine
  kRequired,  // the handshake fails without a certificate that verifies against client_ca_file
};

struct ServerTlsOptions {
  using ClientCert = ClientCertMode;
  std::string cert_file{};       // PEM chain: leaf first
  std::string key_file{};        // PEM private key of the leaf
  std::string client_ca_file{};  // PEM CA(s) for client certificates; needed unless kNone
  ClientCertMode client_cert = ClientCertMode::kNone;
};

// Errors (kInvalidArgument unless noted): "tls_file_missing" (kNotFound), "tls_file_not_pem",
// "tls_bad_certificate", "tls_bad_key", "tls_key_mismatch", "tls_bad_ca", "tls_config".
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerContext(const ServerTlsOptions& options);

struct ClientTlsOptions {
  std::string ca_file{};  // PEM CA(s) trusted for the server; empty = the system trust store
  // Optional client certificate for mTLS: both or neither.
  std::string cert_file{};
  std::string key_file{};
};

// verify_peer with the given CA. Host names are checked per connection (see HttpsClient).
Result<std::shared_ptr<boost::asio::ssl::context>> MakeClientContext(const ClientTlsOptions& options);

// What the other side presented. Times are Unix seconds; hex is lower case.
struct PeerCertificate {
  std::string subject_cn{};
  std::string issuer_cn{};
  std::string serial_hex{};
  std::string fingerprint_sha256{};  // of the DER encoding
  std::string public_key_sha256{};   // of the DER SubjectPublicKeyInfo: the key, whatever cert
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  bool verified = false;  // chain verification succeeded (SSL_get_verify_result == X509_V_OK)
};

// Lower-case hex SHA-256 over a public key's DER SubjectPublicKeyInfo ("" on failure); the same
// value for a key in a certificate and in a certificate request.
std::string PublicKeySha256(EVP_PKEY* key);

// The peer's leaf certificate after a handshake, or nullopt when none was presented.
std::optional<PeerCertificate> PeerCertificateOf(SSL* ssl);

// Text for why certificate verification failed on this connection ("" when it did not fail),
// e.g. "unable to get local issuer certificate" or "hostname mismatch".
std::string VerifyFailureOf(SSL* ssl);

}  // namespace edgeprune::tls
