#include "edgeprune/common/wire/enroll.hpp"

#include <cctype>

#include "edgeprune/common/wire/fields.hpp"

namespace edgeprune::wire {

boost::json::object ToJson(const EnrollRequest& r) {
  return {{"token", r.token}, {"csr_pem", r.csr_pem}, {"hostname", r.hostname}};
}

Result<EnrollRequest> EnrollRequestFromJson(const boost::json::object& o) {
  EnrollRequest r;
  EP_ASSIGN_OR_RETURN(r.token, ReadString(o, "token", 256));
  EP_ASSIGN_OR_RETURN(r.csr_pem, ReadString(o, "csr_pem", kMaxCsrBytes));
  EP_ASSIGN_OR_RETURN(auto host, ReadOptString(o, "hostname", 253));
  r.hostname = host.value_or("");
  // The host name is stored, listed and logged: only host-name characters, so a newline or an
  // escape sequence from an anonymous client cannot reach a log line or a terminal.
  for (unsigned char c : r.hostname) {
    if (!std::isalnum(c) && c != '.' && c != '-' && c != '_') {
      return json::FieldError("hostname", "may hold only letters, digits, '.', '-' and '_'");
    }
  }
  return r;
}

boost::json::object ToJson(const RenewRequest& r) { return {{"csr_pem", r.csr_pem}}; }

Result<RenewRequest> RenewRequestFromJson(const boost::json::object& o) {
  RenewRequest r;
  EP_ASSIGN_OR_RETURN(r.csr_pem, ReadString(o, "csr_pem", kMaxCsrBytes));
  return r;
}

boost::json::object ToJson(const CertificateGrant& g) {
  return {{"device_id", g.device_id},
          {"certificate_pem", g.certificate_pem},
          {"not_before", g.not_before},
          {"not_after", g.not_after}};
}

Result<CertificateGrant> CertificateGrantFromJson(const boost::json::object& o) {
  CertificateGrant g;
  EP_ASSIGN_OR_RETURN(g.device_id, ReadString(o, "device_id", 128));
  EP_ASSIGN_OR_RETURN(g.certificate_pem, ReadString(o, "certificate_pem", 16 * 1024));
  EP_ASSIGN_OR_RETURN(g.not_before, ReadInt(o, "not_before", 0, std::int64_t{1} << 40));
  EP_ASSIGN_OR_RETURN(g.not_after, ReadInt(o, "not_after", 0, std::int64_t{1} << 40));
  return g;
}

}  // namespace edgeprune::wire
