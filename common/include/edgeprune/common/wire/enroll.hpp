#pragma once
// Enrollment (POST /agent/v1/enroll, token + CSR, no client certificate) and certificate renewal
// (POST /agent/v1/renew, mTLS + CSR). The private key never travels: only the CSR does.
//
// Thread-safety: plain value types; codecs are pure functions.

#include <cstdint>
#include <string>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::wire {

inline constexpr std::size_t kMaxCsrBytes = 8 * 1024;

struct EnrollRequest {
  std::string token;     // one-time enrollment token
  std::string csr_pem;   // PKCS#10, EC P-256
  std::string hostname;  // informational
};

struct RenewRequest {
  std::string csr_pem;
};

// Answer to both enroll and renew.
struct CertificateGrant {
  std::string device_id;
  std::string certificate_pem;
  std::int64_t not_before = 0;  // unix seconds
  std::int64_t not_after = 0;
};

boost::json::object ToJson(const EnrollRequest& r);
Result<EnrollRequest> EnrollRequestFromJson(const boost::json::object& o);
boost::json::object ToJson(const RenewRequest& r);
Result<RenewRequest> RenewRequestFromJson(const boost::json::object& o);
boost::json::object ToJson(const CertificateGrant& g);
Result<CertificateGrant> CertificateGrantFromJson(const boost::json::object& o);

}  // namespace edgeprune::wire
