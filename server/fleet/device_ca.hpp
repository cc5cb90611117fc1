#pragma once
// The device certificate authority: turns an enrollment CSR into a short-lived client certificate
// (device id in the subject CN, random 128-bit serial, clientAuth only), signed by the device CA
// key that deploy/pki/make-dev-pki.sh creates. Only EC P-256 CSRs with a valid self-signature
// are accepted.
//
// Thread-safety: Issue() may be called from many threads at once (the key is only read).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::fleet {

struct IssuedCertificate {
  std::string pem;
  std::string serial_hex;          // lower-case hex
  std::string fingerprint_sha256;  // lower-case hex of SHA-256 over the DER encoding
  std::string public_key_sha256;   // of the subject's DER SubjectPublicKeyInfo (tls::PublicKeySha256)
  std::int64_t not_before = 0;     // unix seconds
  std::int64_t not_after = 0;
};

class DeviceCa {
 public:
  ~DeviceCa();
  DeviceCa(DeviceCa&&) noexcept;
  DeviceCa& operator=(DeviceCa&&) noexcept;

  // Errors name the file and what is wrong with it; the key must match the certificate.
  static Result<DeviceCa> Load(const std::string& cert_path, const std::string& key_path);
  static Result<DeviceCa> FromPem(const std::string& cert_pem, const std::string& key_pem);

  // "invalid_csr" (kInvalidArgument) for a malformed CSR, a bad self-signature or a key that is
  // not EC P-256. now is unix seconds (injectable for tests).
  Result<IssuedCertificate> Issue(const std::string& csr_pem, const std::string& device_id,
                                  std::chrono::seconds validity, std::int64_t now) const;

  const std::string& certificate_pem() const;

 private:
  struct Impl;
  explicit DeviceCa(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// SHA-256 over the DER of a PEM certificate, lower-case hex; used to match a presented peer
// certificate to the one recorded at issue.
Result<std::string> CertificateFingerprint(const std::string& cert_pem);

}  // namespace edgeprune::fleet
