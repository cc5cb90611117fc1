#include "server/app/application.hpp"

#include <prometheus/registry.h>

#include <signal.h>

#include <cstdio>
#include <memory>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"
#include "edgeprune/common/process_limits.hpp"
#include "edgeprune/common/tls.hpp"
#include "server/app/fleet_wiring.hpp"
#include "server/app/probes.hpp"
#include "server/app/retention_task.hpp"
#include "server/app/server_config.hpp"
#include "common/http/metrics.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"
#include "server/store/database.hpp"
#include "server/store/migrator.hpp"
#include "server/app/variants_module.hpp"
#include "server/api/openapi_routes.hpp"

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

// What Assemble() builds and Run() serves; members are destroyed in reverse, loop services last.
struct Application::Assembly {
  std::shared_ptr<store::Database> database;
  std::shared_ptr<prometheus::Registry> registry;
  std::unique_ptr<VariantsModule> loop;
  FleetWiring fleet;
  std::unique_ptr<RetentionTask> retention;  // started by Run() only
  std::vector<http::Route> routes;
};

Result<Application::Assembly> Application::Assemble() {
  const Config& c = config_;
  auto logger = log::Get("server");
  Assembly a;

  // Data directory: the database (and later blobs) live here.
  const std::string data_dir = c.GetString("server.data_dir");
  // 0700: the database holds token hashes, the audit log and device identities; blobs hold the
  // masters. Nobody but the server's user has a reason to read them.
  if (auto made = fs::EnsureDir(data_dir, 0700); !made.ok()) {
    return MakeError(ErrorKind::kIo, "data_dir_unusable",
                     "server.data_dir " + data_dir + ": " + made.error().message);
  }

  // Store: open the database store.url names (SQLite under the data dir by default) and bring
  // its schema up to date.
  store::MigrationReport report;
  EP_ASSIGN_OR_RETURN(a.database,
                      store::OpenAndMigrate(c.GetString("store.url"), data_dir,
                                            c.GetString("store.migrations_dir"), &report));
  const std::string migrations = c.GetString("store.migrations_dir");
  logger->info("database {} at schema version {} ({} migration(s) applied; migrations from {})",
               a.database->path(), report.to_version, report.applied.size(),
               migrations.empty() ? "the binary" : migrations);

  // Metrics: one registry shared by every component.
  a.registry = std::make_shared<prometheus::Registry>();

  // Variants: models, the variant ladder, build jobs, signing, delivery, telemetry, closed loop.
  EP_ASSIGN_OR_RETURN(a.loop, server::VariantsModule::Start(c, a.database, a.registry, data_dir));

  // Fleet: devices, enrollment, operator tokens, audit; its Authenticator guards the routes.
  EP_ASSIGN_OR_RETURN(a.fleet, WireFleet(c, a.database, a.registry, a.loop->DesiredVariant()));
  // A device whose budget changed (new profile, new caps) gets the variant that fits it now.
  a.fleet.fleet->registry->OnBudgetChanged(
      [deployments = a.loop->services()->deployments](const std::string& device_id) {
        auto moved = deployments->Reassign(device_id, "system", "budget changed");
        if (moved.ok()) {
          log::Get("variants")->info("device {}: budget changed, assignment {} {}", device_id,
                                     moved->state, moved->variant_id.value_or("-"));
        } else if (moved.error().code != "assignment_not_found") {
          log::Get("variants")->error("device {}: reassignment after a budget change: {}",
                                      device_id, moved.error().ToString());
        }
      });

  // Retention: old rows of the fleet's and the loop's tables, unreferenced blobs; once per fleet
  // under the "retention" task lease.
  EP_ASSIGN_OR_RETURN(RetentionOptions retention, RetentionOptions::FromConfig(c));
  const LoopServices& loop = *a.loop->services();
  a.retention = std::make_unique<RetentionTask>(
      RetentionSources{loop.telemetry, a.fleet.fleet->registry, loop.queue, loop.models,
                       loop.variants, loop.datasets, loop.blobs},
      retention,
      std::make_shared<store::TaskLeases>(*a.database, store::TaskLeases::ProcessOwner()),
      a.registry);

  // Routes: the fleet's, the loop's, probes, metrics and the API's own contract. This list is
  // the whole API: `edgeprune-server routes` prints it and the contract check compares it with
  // server/api/openapi.json.
  a.routes = std::move(a.fleet.routes);
  for (auto& route : a.loop->Routes()) a.routes.push_back(std::move(route));
  for (auto& route : ProbeRoutes(a.database)) a.routes.push_back(std::move(route));
  const http::Auth metrics_auth =
      c.GetBool("metrics.require_token") ? http::Auth::kViewer : http::Auth::kPublic;
  std::vector<http::ExpositionAppender> device_series;
  if (auto m = a.loop->services()->metrics) {
    m->SetSeriesCap(static_cast<std::size_t>(c.GetInt("metrics.max_device_series")));
    device_series.push_back([m](std::string& out) { m->AppendExposition(out); });
  }
  a.routes.push_back(http::MetricsRoute(a.registry, metrics_auth, std::move(device_series)));
  for (auto& route : api::OpenApiRoutes()) a.routes.push_back(std::move(route));
  return a;
}

Result<std::vector<http::Route>> Application::Routes() {
  EP_ASSIGN_OR_RETURN(Assembly a, Assemble());
  // The router refuses what serve would refuse (a duplicate method and pattern).
  http::Router router(a.fleet.authenticator);
  for (const auto& route : a.routes) EP_RETURN_IF_ERROR(router.Add(route));
  a.loop->Stop();
  return std::move(a.routes);
}

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

  // TLS: server certificate, and device client certificates when a device CA is configured.
  // Checked before any service starts, so a bad certificate path fails fast.
  auto mode = ClientCertModeFrom(c);
  if (!mode.ok()) return Fail(mode.error());
  auto tls_context = tls::MakeServerContext(tls::ServerTlsOptions{
      c.GetString("server.tls_cert"), c.GetString("server.tls_key"),
      c.GetString("server.client_ca"), *mode});
  if (!tls_context.ok()) return Fail(tls_context.error());

  // Every service and the route list (store, metrics, loop, fleet, routes: Assemble()).
  auto assembled = Assemble();
  if (!assembled.ok()) return Fail(assembled.error());
  Assembly& a = *assembled;

  // Router: every route of the assembly, guarded by the fleet's Authenticator.
  auto router = std::make_shared<http::Router>(a.fleet.authenticator);
  for (auto& route : a.routes) {
    if (auto s = router->Add(std::move(route)); !s.ok()) return Fail(s.error());
  }

  // HTTP server: serves until SIGINT/SIGTERM, then drains. HTTP families built once here.
  auto http_metrics = std::make_shared<http::HttpMetrics>(a.registry);
  http::HttpsServer server(HttpOptionsFrom(c), std::move(tls_context).value(), router, http_metrics);
  auto port = server.Start();
  if (!port.ok()) return Fail(port.error());
  std::printf("listening on https://%s:%u\n", c.GetString("server.listen_host").c_str(),
              static_cast<unsigned>(*port));
  std::fflush(stdout);
  a.fleet.fleet->Start();
  a.retention->Start();
  server.Wait();
  a.retention->Stop();
  a.fleet.fleet->Stop();
  a.loop->Stop();
  logger->info("drained; exiting");
  return 0;
}

int Application::RunWorker() {
  const Config& c = config_;
  auto logger = log::Get("server");
  if (auto s = log::SetLevel(c.GetString("log.level")); !s.ok()) return Fail(s.error());

  // Signals: blocked here, before any thread starts, so every thread inherits the mask and only
  // the sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Store: the database the serve processes use; a worker only makes sense where it is shared.
  const std::string data_dir = c.GetString("server.data_dir");
  if (auto made = fs::EnsureDir(data_dir, 0700); !made.ok()) {
    return Fail(MakeError(ErrorKind::kIo, "data_dir_unusable",
                          "server.data_dir " + data_dir + ": " + made.error().message));
  }
  store::MigrationReport report;
  auto database = store::OpenAndMigrate(c.GetString("store.url"), data_dir,
                                        c.GetString("store.migrations_dir"), &report);
  if (!database.ok()) return Fail(database.error());
  std::shared_ptr<store::Database> db = std::move(database).value();
  if (db->dialect() != store::Dialect::kPostgres) {
    return Fail(MakeError(ErrorKind::kInvalidArgument, "worker_needs_postgresql",
                          "edgeprune-server worker shares the job queue with serve processes, "
                          "which needs a PostgreSQL store.url; with SQLite, serve runs the builds "
                          "(variants.workers)"));
  }
  logger->info("database {} at schema version {}", db->path(), report.to_version);

  // Builds: the loop's services with only the worker pool running (no routes, no rollouts).
  auto loop = VariantsModule::Start(c, db, nullptr, data_dir, LoopRole::kWorker);
  if (!loop.ok()) return Fail(loop.error());
  std::printf("worker running: %lld build thread(s)\n",
              static_cast<long long>(c.GetInt("variants.workers")));
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  logger->info("signal {}: stopping the build workers", signal_number);
  (*loop)->Stop();
  logger->info("stopped; exiting");
  return 0;
}

}  // namespace edgeprune::server
