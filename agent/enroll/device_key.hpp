#pragma once
// The device's own key pair and certificate requests. The EC P-256 private key is created on the
// device, written with mode 0600 and never sent anywhere: only CSRs signed with it leave.
//
// Thread-safety: free functions without shared state.

#include <cstdint>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::agent {

// A fresh EC P-256 private key as PKCS#8 PEM.
Result<std::string> GenerateDeviceKey();

// A PKCS#10 request over the key, subject CN = common_name, signed with SHA-256.
// Error "invalid_key" when key_pem is not an EC private key.
Result<std::string> MakeCsr(const std::string& key_pem, const std::string& common_name);

// The certificate's subject CN and validity (unix seconds); "invalid_certificate" when unreadable.
struct CertificateInfo {
  std::string subject_cn;
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
};
Result<CertificateInfo> InspectCertificate(const std::string& cert_pem);

}  // namespace edgeprune::agent
