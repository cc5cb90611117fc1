// Telemetry ingest over mTLS on loopback: the real HttpsServer, Router and telemetry route, real
// HttpsClients with device certificates, on a real SQLite file and then on a real PostgreSQL
// server (started here, fsync on). Every report is committed before its ack. Measured side by
// side in one run: batches of 100 reports per request (ours) against one report per request
// (baseline), on each backend; median of 3 rounds each, and the ratio. Never run in CI.
//
//   cmake --build <build> --target telemetry_ingest_bench && nice -n 10 <build>/tests/telemetry_ingest_bench
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/https_client.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/tls.hpp"
#include "edgeprune/common/wire/telemetry.hpp"
#include "common/http/authenticator.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"
#include "server/store/database.hpp"
#include "server/store/migrator.hpp"
#include "server/deploy/closed_loop.hpp"
#include "server/api/loop_routes.hpp"
#include "support/postgres_server.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

namespace ep = edgeprune;

namespace {

// Device identity = the verified client certificate's CN (the bench has no enrollment flow).
class CertificateAuthenticator : public ep::http::Authenticator {
 public:
  ep::Result<ep::http::Principal> AuthenticateBearer(std::string_view) override {
    return ep::MakeError(ep::ErrorKind::kUnauthenticated, "unauthenticated", "no operators here");
  }
  ep::Result<ep::http::Principal> AuthenticateDevice(const ep::tls::PeerCertificate& c) override {
    return ep::http::Principal{ep::http::Principal::Kind::kDevice, c.subject_cn,
                               ep::http::Role::kViewer};
  }
};

constexpr int kClients = 2;
constexpr int kReportsPerClient = 4000;

std::string Batch(std::int64_t first_seq, int count) {
  ep::wire::TelemetryBatch b;
  for (int i = 0; i < count; ++i) {
    ep::wire::TelemetryReport r;
    r.seq = first_seq + i;
    r.timestamp_ms = 1'700'000'000'000 + r.seq;
    r.variant_id = "var-bench";
    r.probe_accuracy = 0.9;
    r.live_latency = ep::wire::LatencyQuantiles{1.0, 2.0, 3.0, 50};
    r.inference_count = 50;
    b.reports.push_back(r);
  }
  return ep::json::Serialize(ep::wire::ToJson(b));
}

// Sends kReportsPerClient reports from each client in batches of `batch`; returns reports/s.
double Round(std::uint16_t port, const std::vector<std::shared_ptr<boost::asio::ssl::context>>& tls,
             int batch, std::int64_t seq_base) {
  std::atomic<bool> ok{true};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      ep::http::HttpsClient client({"127.0.0.1", port, tls[c]});
      for (int sent = 0; sent < kReportsPerClient; sent += batch) {
        auto r = client.Post("/agent/v1/telemetry", Batch(seq_base + sent + 1, batch));
        if (!r.ok() || r->status != 200) {
          std::fprintf(stderr, "request failed: %s\n",
                       r.ok() ? r->body.c_str() : r.error().ToString().c_str());
          ok = false;
          return;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ok ? kClients * kReportsPerClient / s : 0.0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Figures {
  double batched = 0;  // reports/s, median of 3 rounds
  double single = 0;
  std::int64_t stored = 0;
  std::int64_t sent = 0;
};

// The rounds on one database: the telemetry route on its own HTTPS server over `db`.
Figures Measure(const std::shared_ptr<ep::store::Database>& db, ep::store::Dialect dialect,
                const ep::testing::TestPki& pki, const std::vector<std::string>& devices,
                const std::vector<std::shared_ptr<boost::asio::ssl::context>>& client_tls) {
  Figures f;
  auto migrator = ep::store::Migrator::Load(ep::store::DefaultMigrationsDir(), dialect);
  if (!migrator.ok() || !migrator->Apply(*db).ok()) return f;
  for (const auto& id : devices) {
    auto lease = db->Acquire();
    if (!lease.ok() || !(*lease)->Execute("bench_device",
                                          "INSERT INTO devices (id, enrolled_at) VALUES (?, 0)", id)
                            .ok()) {
      return f;
    }
  }
  ep::api::TelemetryRouteServices services;
  services.telemetry = std::make_shared<ep::telemetry::TelemetryStore>(db);
  auto router = std::make_shared<ep::http::Router>(std::make_shared<CertificateAuthenticator>());
  for (auto& r : ep::api::TelemetryRoutes(services)) {
    if (r.pattern == "/agent/v1/telemetry") (void)router->Add(std::move(r));
  }
  auto server_tls = ep::tls::MakeServerContext({pki.server_cert(), pki.server_key(),
                                                pki.client_ca_cert(),
                                                ep::tls::ClientCertMode::kRequired});
  if (!server_tls.ok()) return f;
  ep::http::ServerOptions options;
  options.threads = 2;
  ep::http::HttpsServer server(options, *server_tls, router, nullptr);
  auto port = server.Start();
  if (!port.ok()) {
    std::fprintf(stderr, "%s\n", port.error().ToString().c_str());
    return f;
  }
  std::vector<double> batched, single;
  std::int64_t seq = 0;
  for (int round = 0; round < 3; ++round) {
    batched.push_back(Round(*port, client_tls, 100, seq));
    seq += kReportsPerClient;
    single.push_back(Round(*port, client_tls, 1, seq));
    seq += kReportsPerClient;
  }
  server.Stop();
  server.Wait();
  auto lease = db->Acquire();
  if (lease.ok()) {
    auto count = (*lease)->Query("bench_count", "SELECT COUNT(*) FROM telemetry");
    if (count.ok() && count->Step().ok()) f.stored = count->Int64(0);
  }
  f.batched = Median(batched);
  f.single = Median(single);
  f.sent = seq * kClients;
  return f;
}

}  // namespace

int main() {
  (void)ep::log::SetLevel("warn");
  ep::testing::TempDir dir("edgeprune-ingest-bench");
  auto pki = ep::testing::MakeTestPki(dir.path());
  std::vector<std::string> devices;
  std::vector<std::shared_ptr<boost::asio::ssl::context>> client_tls;
  for (int c = 0; c < kClients; ++c) {
    const std::string id = "dev-bench-" + std::to_string(c);
    ep::testing::CertSpec spec;
    spec.common_name = id;
    spec.server_auth = false;
    spec.client_auth = true;
    auto cert = ep::testing::IssueCertificate(spec, pki.client_ca, dir.File(id));
    auto ctx = ep::tls::MakeClientContext({pki.ca_cert(), cert.cert, cert.key});
    if (!ctx.ok()) return 1;
    client_tls.push_back(*ctx);
    devices.push_back(id);
  }

  // SQLite as the server runs it (WAL, synchronous=NORMAL); EDGEPRUNE_BENCH_SYNC_FULL=1 opens it
  // with synchronous=FULL, to price making every write durable (docs/security.md "Durability").
  ep::store::OpenOptions open_options;
  if (const char* full = std::getenv("EDGEPRUNE_BENCH_SYNC_FULL")) {
    open_options.synchronous_full = std::string(full) == "1";
  }
  auto sqlite = ep::store::Database::Open(dir.File("edgeprune.db"), open_options);
  if (!sqlite.ok()) return 1;
  const Figures lite = Measure(std::move(sqlite).value(), ep::store::Dialect::kSqlite, pki,
                               devices, client_tls);

  // PostgreSQL with its defaults (fsync on, synchronous_commit on): every acknowledged report
  // is on disk. Started here on a Unix socket, like the tests' server.
  ep::testing::PostgresServer pg(/*durable=*/true);
  Figures post;
  if (!pg.ok()) {
    std::fprintf(stderr, "PostgreSQL did not start: %s\n", pg.error().c_str());
  } else if (auto db = ep::store::Database::OpenPostgres(pg.Url("postgres"), "bench", {});
             db.ok()) {
    post = Measure(std::move(db).value(), ep::store::Dialect::kPostgres, pki, devices, client_tls);
  } else {
    std::fprintf(stderr, "%s\n", db.error().ToString().c_str());
  }

  std::printf("telemetry ingest, %d mTLS clients on loopback, %d reports each per round, 3 rounds"
              " (medians)\n", kClients, kReportsPerClient);
  std::printf("  %-32s %14s %14s\n", "mode (reports/s)", "SQLite", "PostgreSQL");
  std::printf("  %-32s %14.0f %14.0f\n", "batched (100 per request)", lite.batched, post.batched);
  std::printf("  %-32s %14.0f %14.0f\n", "baseline (1 per request)", lite.single, post.single);
  std::printf("  %-32s %13.1fx %13.1fx\n", "ratio batched/baseline",
              lite.batched / std::max(lite.single, 1.0), post.batched / std::max(post.single, 1.0));
  std::printf("  %-32s %8lld/%-5lld %8lld/%-5lld\n", "reports stored/sent",
              static_cast<long long>(lite.stored), static_cast<long long>(lite.sent),
              static_cast<long long>(post.stored), static_cast<long long>(post.sent));
  const bool all_stored = lite.sent > 0 && lite.stored == lite.sent && post.sent > 0 &&
                          post.stored == post.sent;
  return all_stored ? 0 : 1;
}
