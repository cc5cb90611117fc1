// One retention pass over a telemetry backlog, on a real SQLite file and then on a real
// PostgreSQL server (started here, fsync on), side by side in one run: 500 devices × 1,500
// reports (750,000 rows); per device the oldest 300 are past retention.telemetry_days and the cap
// (retention.telemetry_per_device = 1,000) takes 200 more, so a pass deletes 250,000 rows. Also
// times a second pass (nothing left to delete: the cost of a pass on a pruned table). Never run
// in CI.
//
//   cmake --build <build> --target retention_bench && nice -n 10 <build>/tests/retention_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "edgeprune/common/log.hpp"
#include "server/app/retention_task.hpp"
#include "server/store/migrator.hpp"
#include "support/postgres_server.hpp"
#include "support/temp_dir.hpp"

namespace ep = edgeprune;

namespace {

constexpr int kDevices = 500;
constexpr int kReports = 1500;
constexpr int kOld = 300;
constexpr std::int64_t kDay = 86'400'000;
constexpr std::int64_t kNow = 1'800'000'000'000;

struct Figures {
  double first_s = 0, second_s = 0;
  std::int64_t deleted = 0, left = 0;
  bool ok = false;
};

ep::Status Fill(ep::store::Database& db) {
  for (int d = 0; d < kDevices; ++d) {
    const std::string id = "dev-" + std::to_string(d);
    EP_RETURN_IF_ERROR(db.WithTransaction([&](ep::store::Connection& conn) -> ep::Status {
      EP_RETURN_IF_ERROR(conn.Execute("bench_device",
                                      "INSERT INTO devices (id, enrolled_at) VALUES (?, ?)", id,
                                      kNow - 400 * kDay));
      EP_ASSIGN_OR_RETURN(auto insert,
                          conn.Prepare("bench_report",
                                       "INSERT INTO telemetry (device_id, seq, received_at, "
                                       "taken_at, variant_id) VALUES (?1, ?2, ?3, ?3, 'var-1')"));
      for (std::int64_t seq = 1; seq <= kReports; ++seq) {
        const std::int64_t at = seq <= kOld ? kNow - 40 * kDay : kNow - kDay;
        EP_RETURN_IF_ERROR(insert.Reset());
        EP_RETURN_IF_ERROR(insert.BindAll(id, seq, at));
        EP_RETURN_IF_ERROR(insert.Run());
      }
      return ep::Ok();
    }));
  }
  return ep::Ok();
}

Figures Measure(const std::string& url, const std::string& data_dir) {
  Figures f;
  auto db = ep::store::OpenAndMigrate(url, data_dir, "");
  if (!db.ok()) {
    std::fprintf(stderr, "%s\n", db.error().ToString().c_str());
    return f;
  }
  if (auto filled = Fill(**db); !filled.ok()) {
    std::fprintf(stderr, "%s\n", filled.error().ToString().c_str());
    return f;
  }
  auto blobs = ep::store::BlobStore::Open(data_dir);
  if (!blobs.ok()) return f;
  std::shared_ptr<ep::store::BlobStore> store = std::move(blobs).value();
  auto clock = std::make_shared<ep::ManualClock>(kNow);
  auto audit = std::make_shared<ep::fleet::AuditLog>(*db, clock);
  auto queue = std::make_shared<ep::jobs::JobQueue>(**db, store.get());
  ep::server::RetentionSources sources{
      std::make_shared<ep::telemetry::TelemetryStore>(*db),
      std::make_shared<ep::fleet::DeviceRegistry>(*db, clock, audit, nullptr, nullptr,
                                                  ep::fleet::RegistryOptions{}),
      queue,
      std::make_shared<ep::catalog::ModelRegistry>(*db),
      std::make_shared<ep::catalog::VariantRepository>(*db),
      std::make_shared<ep::catalog::DatasetCatalog>(*db, store, ep::datasets::ValidationLimits{}),
      store};
  ep::server::RetentionOptions options;  // the defaults (telemetry 30 days), with a cap of 1,000
  options.telemetry_per_device = 1000;
  ep::server::RetentionTask task(sources, options, nullptr, nullptr, clock);
  for (double* seconds : {&f.first_s, &f.second_s}) {
    const auto start = std::chrono::steady_clock::now();
    auto pass = task.RunOnce();
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!pass.ok() || !pass->has_value()) {
      std::fprintf(stderr, "pass: %s\n", pass.ok() ? "no lease" : pass.error().ToString().c_str());
      return f;
    }
    if (seconds == &f.first_s) f.deleted = (*pass)->telemetry;
  }
  auto lease = (*db)->Acquire();
  if (!lease.ok()) return f;
  auto s = (*lease)->Query("bench_left", "SELECT COUNT(*) FROM telemetry");
  if (!s.ok() || !s->Step().ok()) return f;
  f.left = s->Int64(0);
  f.ok = true;
  return f;
}

}  // namespace

int main() {
  (void)ep::log::SetLevel("warn");
  ep::testing::TempDir lite_dir("edgeprune-retention-bench");
  const Figures lite = Measure("", lite_dir.path());
  ep::testing::PostgresServer pg(/*durable=*/true);
  Figures post;
  ep::testing::TempDir pg_dir("edgeprune-retention-bench-pg");
  if (!pg.ok()) {
    std::fprintf(stderr, "PostgreSQL did not start: %s\n", pg.error().c_str());
  } else {
    post = Measure(pg.Url("postgres"), pg_dir.path());
  }
  std::printf("retention pass, %d devices x %d reports (%d rows), %d old per device, cap 1000\n",
              kDevices, kReports, kDevices * kReports, kOld);
  std::printf("  %-34s %12s %12s\n", "", "SQLite", "PostgreSQL");
  std::printf("  %-34s %12.2f %12.2f\n", "first pass (s)", lite.first_s, post.first_s);
  std::printf("  %-34s %12.0f %12.0f\n", "rows deleted per second",
              lite.deleted / std::max(lite.first_s, 1e-9),
              post.deleted / std::max(post.first_s, 1e-9));
  std::printf("  %-34s %12.2f %12.2f\n", "second pass, nothing to do (s)", lite.second_s,
              post.second_s);
  std::printf("  %-34s %12lld %12lld\n", "rows deleted", static_cast<long long>(lite.deleted),
              static_cast<long long>(post.deleted));
  std::printf("  %-34s %12lld %12lld\n", "rows left", static_cast<long long>(lite.left),
              static_cast<long long>(post.left));
  const std::int64_t expect_deleted = kDevices * (kReports - 1000);
  const bool right = lite.ok && post.ok && lite.deleted == expect_deleted &&
                     post.deleted == expect_deleted && lite.left == kDevices * 1000 &&
                     post.left == kDevices * 1000;
  std::printf("%s\n", right ? "every pass deleted exactly the expected rows"
                            : "WRONG: a pass failed or deleted other rows than expected");
  return right ? 0 : 1;
}
