#include "edgeprune/common/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <ctime>

#include "edgeprune/common/crypto.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/openssl.hpp"

namespace edgeprune::tls {
namespace ssl = boost::asio::ssl;

namespace {

constexpr std::size_t kMaxPemBytes = 1024 * 1024;

// TLS 1.2 suites: forward secret key exchange and AEAD only. TLS 1.3 suites are OpenSSL's
// defaults, all of which are AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";


Error FileError(const char* code, const std::string& role, const std::string& path,
                const std::string& reason) {
  return MakeError(ErrorKind::kInvalidArgument, code, role + " '" + path + "': " + reason);
}

// Reads a PEM file, mapping "absent" and "not PEM" to errors naming the role and path.
Result<std::string> ReadPem(const std::string& role, const std::string& path) {
  if (path.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "tls_config", role + " file is not configured");
  }
  auto text = fs::ReadFile(path, kMaxPemBytes);
  if (!text.ok()) {
    if (text.error().code == "file_not_found") {
      return MakeError(ErrorKind::kNotFound, "tls_file_missing",
                       role + " '" + path + "' does not exist");
    }
    return FileError("tls_file_missing", role, path, text.error().message);
  }
  if (text->find("-----BEGIN ") == std::string::npos) {
    return FileError("tls_file_not_pem", role, path, "not a PEM file (no -----BEGIN line)");
  }
  return text;
}

void ApplyCommonPolicy(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
}

Status LoadCertAndKey(ssl::context& ctx, const std::string& cert_file, const std::string& key_file,
                      const std::string& role) {
  EP_ASSIGN_OR_RETURN(std::string cert_pem, ReadPem(role + " certificate", cert_file));
  EP_ASSIGN_OR_RETURN(std::string key_pem, ReadPem(role + " key", key_file));
  boost::system::error_code ec;
  ctx.use_certificate_chain(boost::asio::buffer(cert_pem), ec);
  if (ec) {
    return FileError("tls_bad_certificate", role + " certificate", cert_file,
                     "not a usable certificate chain (" + openssl::LastError() + ")");
  }
  // Parse the key on its own first: OpenSSL reports a key that does not match the certificate
  // and a key that is not a key alike.
  BIO* bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* parsed = bio ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (parsed == nullptr) {
    return FileError("tls_bad_key", role + " key", key_file,
                     "not a usable private key (" + openssl::LastError() + ")");
  }
  EVP_PKEY_free(parsed);
  ctx.use_private_key(boost::asio::buffer(key_pem), ssl::context::pem, ec);
  if (ec || SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    ERR_clear_error();
    return FileError("tls_key_mismatch", role + " key", key_file,
                     "does not match the certificate in '" + cert_file + "'");
  }
  return Ok();
}

Status LoadTrustedCa(ssl::context& ctx, const std::string& ca_file, const std::string& role) {
  EP_ASSIGN_OR_RETURN(std::string pem, ReadPem(role, ca_file));
  boost::system::error_code ec;
  ctx.add_certificate_authority(boost::asio::buffer(pem), ec);
  if (ec) {
    return FileError("tls_bad_ca", role, ca_file,
                     "holds no usable CA certificate (" + openssl::LastError() + ")");
  }
  return Ok();
}

std::string CommonName(X509_NAME* name) {
  if (name == nullptr) return "";
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "";
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::int64_t UnixTime(const ASN1_TIME* t) { return openssl::UnixTime(t).value_or(0); }

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeServerContext(const ServerTlsOptions& options) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  ApplyCommonPolicy(native);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return MakeError(ErrorKind::kInternal, "tls_config",
                     "cipher list rejected: " + openssl::LastError());
  }
  EP_RETURN_IF_ERROR(LoadCertAndKey(*ctx, options.cert_file, options.key_file, "server"));

  if (options.client_cert == ClientCertMode::kNone) {
    ctx->set_verify_mode(ssl::verify_none);
    return ctx;
  }
  EP_RETURN_IF_ERROR(LoadTrustedCa(*ctx, options.client_ca_file, "client CA"));
  // Tell clients which CAs we accept, so they pick the right certificate.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_file.c_str());
  if (names == nullptr) {
    return FileError("tls_bad_ca", "client CA", options.client_ca_file,
                     "holds no CA names (" + openssl::LastError() + ")");
  }
  SSL_CTX_set_client_CA_list(native, names);
  // Needed for session resumption when client certificates are verified.
  static constexpr unsigned char kSessionContext[] = "edgeprune";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof(kSessionContext) - 1);
  ssl::verify_mode mode = ssl::verify_peer;
  if (options.client_cert == ClientCertMode::kRequired) mode |= ssl::verify_fail_if_no_peer_cert;
  ctx->set_verify_mode(mode);
  return ctx;
}

Result<std::shared_ptr<ssl::context>> MakeClientContext(const ClientTlsOptions& options) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ApplyCommonPolicy(ctx->native_handle());
  if (SSL_CTX_set_cipher_list(ctx->native_handle(), kTls12Ciphers) != 1) {
    return MakeError(ErrorKind::kInternal, "tls_config",
                     "cipher list rejected: " + openssl::LastError());
  }
  if (options.ca_file.empty()) {
    boost::system::error_code ec;
    ctx->set_default_verify_paths(ec);
    if (ec) {
      return MakeError(ErrorKind::kInternal, "tls_config",
                       "cannot load the system trust store: " + ec.message());
    }
  } else {
    EP_RETURN_IF_ERROR(LoadTrustedCa(*ctx, options.ca_file, "server CA"));
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return MakeError(ErrorKind::kInvalidArgument, "tls_config",
                     "a client certificate needs both cert_file and key_file");
  }
  if (!options.cert_file.empty()) {
    EP_RETURN_IF_ERROR(LoadCertAndKey(*ctx, options.cert_file, options.key_file, "client"));
  }
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

std::string PublicKeySha256(EVP_PKEY* key) {
  if (key == nullptr) return "";
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return "";
  std::string hex = crypto::Sha256Hex(
      std::string_view(reinterpret_cast<char*>(der), static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  return hex;
}

std::optional<PeerCertificate> PeerCertificateOf(SSL* ssl) {
  if (ssl == nullptr) return std::nullopt;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  PeerCertificate out;
  out.subject_cn = CommonName(X509_get_subject_name(cert));
  out.issuer_cn = CommonName(X509_get_issuer_name(cert));
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      out.serial_hex = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  for (char& c : out.serial_hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
    out.fingerprint_sha256 = crypto::HexEncode(std::string_view(reinterpret_cast<char*>(md), md_len));
  }
  out.public_key_sha256 = PublicKeySha256(X509_get0_pubkey(cert));
  out.not_before = UnixTime(X509_get0_notBefore(cert));
  out.not_after = UnixTime(X509_get0_notAfter(cert));
  out.verified = SSL_get_verify_result(ssl) == X509_V_OK;
  X509_free(cert);
  return out;
}

std::string VerifyFailureOf(SSL* ssl) {
  if (ssl == nullptr) return "";
  long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return "";
  return X509_verify_cert_error_string(result);
}

}  // namespace edgeprune::tls
