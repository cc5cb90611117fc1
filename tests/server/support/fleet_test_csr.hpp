#pragma once
// Test helper for the fleet tests: a fresh EC key and a CSR over it, made with OpenSSL directly
// (the server test binary does not link the agent), and a certificate's subject CN.

#include <string>

namespace edgeprune::fleet_test {

struct KeyAndCsr {
  std::string key_pem;
  std::string csr_pem;
};

// curve: "P-256" or another OpenSSL group name ("P-384") for negative tests.
KeyAndCsr MakeKeyAndCsr(const std::string& curve = "P-256");
std::string SubjectCnOf(const std::string& cert_pem);
// A new CSR signed by an existing key (a renewal over the same key).
std::string CsrFor(const std::string& key_pem);
// tls::PublicKeySha256 of the key in a PEM private key or certificate ("" when neither).
std::string PublicKeySha256Of(const std::string& pem);

}  // namespace edgeprune::fleet_test
