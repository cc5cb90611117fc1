#include "server/app/application.hpp"

#include <prometheus/registry.h>

#include <cstdio>
#include <memory>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/process_limits.hpp"
#include "edgeprune/common/tls.hpp"
#include "server/app/fleet_wiring.hpp"
#include "server/app/probes.hpp"
#include "server/app/server_config.hpp"
#include "common/http/metrics.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"
#include "server/store/database.hpp"
#include "server/store/migrator.hpp"
#include "server/app/variants_module.hpp"

namespace edgeprune::server {
namespace {

int Fail(const Error& error) {
  log::Get("server")->error("{}", error.ToString());
  std::fprintf(stderr, "edgeprune-server: %s\n", error.ToString().c_str());
  return 1;
}

Result<tls::ClientCertMode> ClientCertModeFrom(const Config& c) {
  if (c.GetString("server.client_ca").empty()) return tls::ClientCertMode::kNone;
  const std::string mode = c.GetString("server.client_cert");
  if (mode == "required") return tls::ClientCertMode::kRequired;
  if (mode == "optional") return tls::ClientCertMode::kOptional;
  return tls::ClientCertMode::kNone;
}

}  // namespace

int Application::Run() {
  const Config& c = config_;
  auto logger = log::Get("server");

  // Logging first, so every later step can report.
  if (auto s = log::SetLevel(c.GetString("log.level")); !s.ok()) return Fail(s.error());

  // One descriptor per connected device: take all of the hard open-file limit, not the usual
  // soft 1024. A failure only limits how many devices can connect, so it is a warning.
  if (auto fds = RaiseOpenFileLimit(); fds.ok()) {
    logger->info("open-file limit {} (soft was {}, hard {})", fds->soft, fds->soft_before, fds->hard);
  } else {
    logger->warn("keeping the open-file limit: {}", fds.error().message);
  }

  // Data directory: the database (and later blobs) live here.
  const std::string data_dir = c.GetString("server.data_dir");
  // 0700: the database holds token hashes, the audit log and device identities; blobs hold the
  // masters. Nobody but the server's user has a reason to read them.
  if (auto made = fs::EnsureDir(data_dir, 0700); !made.ok()) {
    return Fail(MakeError(ErrorKind::kIo, "data_dir_unusable",
                          "server.data_dir " + data_dir + ": " + made.error().message));
  }

  // Store: open the database store.url names (SQLite under the data dir by default) and bring
  // its schema up to date.
  store::MigrationReport report;
  auto db = store::OpenAndMigrate(c.GetString("store.url"), data_dir,
                                  c.GetString("store.migrations_dir"), &report);
  if (!db.ok()) return Fail(db.error());
  std::shared_ptr<store::Database> database = std::move(db).value();
  const std::string migrations = c.GetString("store.migrations_dir");
  logger->info("database {} at schema version {} ({} migration(s) applied; migrations from {})",
               database->path(), report.to_version, report.applied.size(),
               migrations.empty() ? "the binary" : migrations);

  // Metrics: one registry shared by every component; HTTP families built once here.
  auto registry = std::make_shared<prometheus::Registry>();
  auto http_metrics = std::make_shared<http::HttpMetrics>(registry);

  // TLS: server certificate, and device client certificates when a device CA is configured.
  auto mode = ClientCertModeFrom(c);
  if (!mode.ok()) return Fail(mode.error());
  auto tls_context = tls::MakeServerContext(tls::ServerTlsOptions{
      c.GetString("server.tls_cert"), c.GetString("server.tls_key"),
      c.GetString("server.client_ca"), *mode});
  if (!tls_context.ok()) return Fail(tls_context.error());

  // Variants: models, the variant ladder, build jobs, signing, delivery, telemetry, closed loop.
  auto loop = server::VariantsModule::Start(c, database, registry, data_dir);
  if (!loop.ok()) return Fail(loop.error());

  // Fleet: devices, enrollment, operator tokens, audit; its Authenticator guards the routes.
  auto fleet = WireFleet(c, database, registry, (*loop)->DesiredVariant());
  if (!fleet.ok()) return Fail(fleet.error());
  // A device whose budget changed (new profile, new caps) gets the variant that fits it now.
  fleet->fleet->registry->OnBudgetChanged(
      [deployments = (*loop)->services()->deployments](const std::string& device_id) {
        auto moved = deployments->Reassign(device_id, "system", "budget changed");
        if (moved.ok()) {
          log::Get("variants")->info("device {}: budget changed, assignment {} {}", device_id,
                                     moved->state, moved->variant_id.value_or("-"));
        } else if (moved.error().code != "assignment_not_found") {
          log::Get("variants")->error("device {}: reassignment after a budget change: {}",
                                      device_id, moved.error().ToString());
        }
      });

  // Router: probes and metrics; every API adds its routes here.
  auto router = std::make_shared<http::Router>(fleet->authenticator);
  for (auto& route : fleet->routes) {
    if (auto s = router->Add(std::move(route)); !s.ok()) return Fail(s.error());
  }
  for (auto& route : (*loop)->Routes()) {
    if (auto s = router->Add(std::move(route)); !s.ok()) return Fail(s.error());
  }
  for (auto& route : ProbeRoutes(database)) {
    if (auto s = router->Add(std::move(route)); !s.ok()) return Fail(s.error());
  }
  const http::Auth metrics_auth =
      c.GetBool("metrics.require_token") ? http::Auth::kViewer : http::Auth::kPublic;
  std::vector<http::ExpositionAppender> device_series;
  if (auto m = (*loop)->services()->metrics) {
    m->SetSeriesCap(static_cast<std::size_t>(c.GetInt("metrics.max_device_series")));
    device_series.push_back([m](std::string& out) { m->AppendExposition(out); });
  }
  if (auto s = router->Add(http::MetricsRoute(registry, metrics_auth, std::move(device_series)));
      !s.ok()) {
    return Fail(s.error());
  }

  // HTTP server: serves until SIGINT/SIGTERM, then drains.
  http::HttpsServer server(HttpOptionsFrom(c), std::move(tls_context).value(), router, http_metrics);
  auto port = server.Start();
  if (!port.ok()) return Fail(port.error());
  std::printf("listening on https://%s:%u\n", c.GetString("server.listen_host").c_str(),
              static_cast<unsigned>(*port));
  std::fflush(stdout);
  fleet->fleet->Start();
  server.Wait();
  fleet->fleet->Stop();
  (*loop)->Stop();
  logger->info("drained; exiting");
  return 0;
}

}  // namespace edgeprune::server
