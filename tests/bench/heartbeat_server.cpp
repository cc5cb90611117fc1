#include "bench/heartbeat_server.hpp"

#include <unistd.h>

#include <openssl/pem.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "edgeprune/common/log.hpp"
#include "edgeprune/common/tls.hpp"
#include "server/app/fleet_wiring.hpp"
#include "common/http/server.hpp"
#include "server/store/migrator.hpp"

namespace edgeprune::bench {

std::pair<std::unique_ptr<EVP_PKEY, PkeyFree>, std::string> KeyAndCsr() {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  X509_REQ* req = X509_REQ_new();
  X509_REQ_set_pubkey(req, key.get());
  X509_REQ_sign(req, key.get(), EVP_sha256());
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_REQ(b, req);
  char* d = nullptr;
  long n = BIO_get_mem_data(b, &d);
  std::string csr(d, static_cast<size_t>(n));
  BIO_free(b);
  X509_REQ_free(req);
  return {std::move(key), csr};
}

std::unique_ptr<X509, X509Free> ParseCert(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return std::unique_ptr<X509, X509Free>(x);
}

int RunServer(const ServerSettings& s, const testing::TestPki& pki, const std::string& dir,
              int fd) {
  (void)log::SetLevel("warn");
  auto db = store::Database::Open(dir + "/server.db", store::OpenOptions{});
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.error().ToString().c_str());
    return 1;
  }
  std::shared_ptr<store::Database> database = std::move(db).value();
  auto migrator = store::Migrator::Load(store::DefaultMigrationsDir(), store::Dialect::kSqlite);
  if (!migrator.ok() || !migrator->Apply(*database).ok()) {
    std::fprintf(stderr, "migrate failed\n");
    return 1;
  }
  ConfigSchema schema;
  fleet::AddFleetConfig(schema);
  auto config = Config::Load(schema, "",
                             {"fleet.device_ca_cert=" + pki.client_ca.cert,
                              "fleet.device_ca_key=" + pki.client_ca.key,
                              "fleet.heartbeat_interval_s=" + std::to_string(s.interval_s),
                              "fleet.enroll_per_minute=0"},  // every simulated agent enrolls from 127.0.0.1
                             "");
  auto registry = std::make_shared<prometheus::Registry>();
  std::fflush(stdout);
  int saved = dup(1);
  dup2(2, 1);  // the admin token line goes to stderr here
  auto wiring = server::WireFleet(*config, database, registry);
  dup2(saved, 1);
  if (!wiring.ok()) {
    std::fprintf(stderr, "%s\n", wiring.error().ToString().c_str());
    return 1;
  }
  fleet::EnrollmentTokenSpec spec;
  spec.max_uses = s.enrollment_uses;
  auto token = wiring->fleet->enrollment_tokens->Create(spec, "bench");
  auto router = std::make_shared<http::Router>(wiring->authenticator);
  for (auto& r : wiring->routes) (void)router->Add(std::move(r));
  auto tls_ctx = tls::MakeServerContext(
      {pki.server.cert, pki.server.key, pki.client_ca.cert, tls::ClientCertMode::kOptional});
  http::ServerOptions so;
  so.threads = s.server_threads;
  so.idle_timeout = std::chrono::seconds(s.interval_s * 6);
  so.handle_signals = true;
  http::HttpsServer server(so, *tls_ctx, router, std::make_shared<http::HttpMetrics>(registry));
  auto port = server.Start();
  if (!port.ok()) {
    std::fprintf(stderr, "%s\n", port.error().ToString().c_str());
    return 1;
  }
  wiring->fleet->Start();
  std::string hello = std::to_string(*port) + " " + token->secret + "\n";
  (void)!write(fd, hello.data(), hello.size());
  close(fd);
  server.Wait();
  wiring->fleet->Stop();
  return 0;
}

}  // namespace edgeprune::bench
