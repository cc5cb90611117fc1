#pragma once
// The server side of the heartbeat load tool (tests/bench/heartbeat_load.cpp): the fleet API on a
// real HttpsServer with real SQLite and the test device CA, meant to run in a forked child, and
// the enrollment identities the simulated agents present (an EC P-256 key of their own and the
// device certificate the server issued for it).
//
// Thread-safety: RunServer() owns the process it runs in (it changes the log level and briefly
// redirects stdout). KeyAndCsr() and ParseCert() are stateless and safe from any thread; an
// Identity is a plain owner, used by one thread at a time.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <utility>

#include "support/test_pki.hpp"

namespace edgeprune::bench {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// What one simulated agent presents: its own key and the certificate the server issued for it.
struct Identity {
  std::unique_ptr<X509, X509Free> cert;
  std::unique_ptr<EVP_PKEY, PkeyFree> key;
};

// A fresh EC P-256 key and a CSR signed with it (PEM).
std::pair<std::unique_ptr<EVP_PKEY, PkeyFree>, std::string> KeyAndCsr();

// The certificate in `pem`, or null when it does not parse.
std::unique_ptr<X509, X509Free> ParseCert(const std::string& pem);

struct ServerSettings {
  int interval_s = 10;       // fleet.heartbeat_interval_s; connections idle 6× this are closed
  int server_threads = 2;    // HttpsServer threads
  int enrollment_uses = 10;  // max uses of the one enrollment token it creates
};

// Fleet + HTTPS on 127.0.0.1:0 with `pki` (server cert, device CA) and a database in `dir`.
// Writes "port token\n" to fd and closes it, serves until SIGTERM, returns the exit code (0, or 1
// after printing why it could not start).
int RunServer(const ServerSettings& s, const testing::TestPki& pki, const std::string& dir, int fd);

}  // namespace edgeprune::bench
