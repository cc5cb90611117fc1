#include "server/app/server_config.hpp"

#include <unistd.h>

#include <climits>
#include <filesystem>
#include <optional>

#include "server/fleet/fleet_service.hpp"
#include "server/store/migrator.hpp"
#include "server/store/store_url.hpp"
#include "server/app/retention_task.hpp"
#include "server/app/variants_module.hpp"

namespace edgeprune::server {
namespace {

std::optional<std::string> NonEmpty(const ConfigValue& v) {
  if (std::get<std::string>(v).empty()) return std::string("must be set");
  return std::nullopt;
}

std::optional<std::string> LogLevel(const ConfigValue& v) {
  const auto& s = std::get<std::string>(v);
  for (const char* ok : {"trace", "debug", "info", "warn", "error", "off"}) {
    if (s == ok) return std::nullopt;
  }
  return "must be one of trace, debug, info, warn, error, off; got '" + s + "'";
}

std::optional<std::string> ClientCertMode(const ConfigValue& v) {
  const auto& s = std::get<std::string>(v);
  if (s == "none" || s == "optional" || s == "required") return std::nullopt;
  return "must be none, optional or required; got '" + s + "'";
}

// store.url is checked here, with every other key, so a malformed one fails at startup with the
// config errors; whether the database answers is checked when it is opened.
std::optional<std::string> StoreUrl(const ConfigValue& v) {
  auto parsed = store::ParseStoreUrl(std::get<std::string>(v), "<server.data_dir>");
  if (parsed.ok()) return std::nullopt;
  std::string why = parsed.error().message;
  if (why.rfind("store.url ", 0) == 0) why = why.substr(10);
  return why;
}

// The default of store.migrations_dir: <prefix>/share/edgeprune/migrations next to an installed
// binary (<prefix>/bin/edgeprune-server, the edgeprune-server package's layout), else the source
// tree's migrations/ of a build-tree binary, else empty (the migrations compiled into the binary).
std::string DefaultMigrationsDir() {
  std::error_code ec;
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n > 0) {
    const std::filesystem::path self(std::string(exe, static_cast<std::size_t>(n)));
    const auto installed = self.parent_path().parent_path() / "share/edgeprune/migrations";
    if (std::filesystem::is_directory(installed, ec)) return installed.string();
  }
  const std::string source = store::DefaultMigrationsDir();
  if (std::filesystem::is_directory(source, ec)) return source;
  return "";
}

}  // namespace

ConfigSchema ServerConfigSchema() {
  ConfigSchema s;
  s.String("server.listen_host", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)");
  s.Int("server.listen_port", 8443, 0, 65535, "TCP port; 0 picks a free one (printed at startup)");
  s.Int("server.threads", 2, 1, 256,
        "HTTP I/O threads, each with its own connections (one more thread accepts them)");
  s.Int("server.blocking_threads", 4, 1, 256,
        "threads running requests that wait on a model worker (model uploads)");
  s.Add({"server.tls_cert", ConfigType::kString, ConfigValue(std::string()),
         "PEM server certificate chain", NonEmpty});
  s.Add({"server.tls_key", ConfigType::kString, ConfigValue(std::string()),
         "PEM private key of the server certificate", NonEmpty});
  s.String("server.client_ca", "",
           "PEM CA that signs device client certificates; empty disables mTLS");
  s.Add({"server.client_cert", ConfigType::kString, ConfigValue(std::string("optional")),
         "client certificates when server.client_ca is set: none, optional or required",
         ClientCertMode});
  s.String("server.data_dir", "data", "directory holding the database and blobs");
  s.Add({"store.url", ConfigType::kString, ConfigValue(std::string()),
         "the database: empty for <server.data_dir>/edgeprune.db, sqlite:///abs/file.db, or "
         "postgresql://user@host:port/db (any libpq URI, e.g. ?host=/socket/dir)",
         StoreUrl});
  s.String("store.migrations_dir", DefaultMigrationsDir(),
           "directory holding sqlite/ and postgresql/ NNNN_name.sql schema migrations; empty: "
           "the ones compiled in");
  s.Int("timeouts.handshake_ms", 10'000, 100, 600'000, "TLS handshake deadline");
  s.Int("timeouts.idle_ms", 60'000, 100, 3'600'000, "keep-alive wait for the next request");
  s.Int("timeouts.read_ms", 30'000, 100, 3'600'000, "deadline for reading one request body");
  s.Int("timeouts.write_ms", 60'000, 100, 3'600'000, "deadline for writing one response");
  s.Int("timeouts.drain_ms", 10'000, 0, 600'000,
        "on SIGINT/SIGTERM, longest wait for in-flight requests before exiting");
  s.Int("limits.header_bytes", 16 * 1024, 1024, 1024 * 1024, "largest request header accepted (else 431)");
  s.Int("limits.body_bytes", 1024 * 1024, 0, std::int64_t{1} << 34,
        "largest request body of a route that declares no limit of its own (else 413); the "
        "model upload's limit is variants.max_model_bytes");
  s.Int("limits.discard_bytes", 16 * 1024 * 1024, 0, std::int64_t{1} << 34,
        "an over-limit body up to this size is read and dropped so the connection survives the 413");
  s.Int("limits.max_connections", 20'000, 0, 10'000'000,
        "open connections at most (0: no cap); more are closed at accept");
  s.Int("limits.max_connections_per_client", 512, 0, 10'000'000,
        "open connections at most from one client address (0: no cap)");
  s.Bool("metrics.require_token", false,
         "/metrics answers only with a viewer (or higher) bearer token; its series name every "
         "device, model and variant");
  s.Int("metrics.max_device_series", 20'000, 0, 10'000'000,
        "distinct (device, variant) pairs given telemetry series; reports beyond are counted in "
        "edgeprune_metrics_reports_dropped_total");
  s.Add({"log.level", ConfigType::kString, ConfigValue(std::string("info")),
         "trace, debug, info, warn, error or off", LogLevel});
  fleet::AddFleetConfig(s);
  server::AddVariantsConfig(s);
  server::AddRetentionConfig(s);
  return s;
}

http::ServerOptions HttpOptionsFrom(const Config& c) {
  using std::chrono::milliseconds;
  http::ServerOptions o;
  o.host = c.GetString("server.listen_host");
  o.port = static_cast<std::uint16_t>(c.GetInt("server.listen_port"));
  o.threads = static_cast<int>(c.GetInt("server.threads"));
  o.blocking_threads = static_cast<int>(c.GetInt("server.blocking_threads"));
  o.handshake_timeout = milliseconds(c.GetInt("timeouts.handshake_ms"));
  o.idle_timeout = milliseconds(c.GetInt("timeouts.idle_ms"));
  o.read_timeout = milliseconds(c.GetInt("timeouts.read_ms"));
  o.write_timeout = milliseconds(c.GetInt("timeouts.write_ms"));
  o.drain_timeout = milliseconds(c.GetInt("timeouts.drain_ms"));
  o.header_limit = static_cast<std::size_t>(c.GetInt("limits.header_bytes"));
  o.body_limit = static_cast<std::uint64_t>(c.GetInt("limits.body_bytes"));
  o.discard_limit = static_cast<std::uint64_t>(c.GetInt("limits.discard_bytes"));
  o.max_connections = static_cast<std::size_t>(c.GetInt("limits.max_connections"));
  o.max_connections_per_client = static_cast<std::size_t>(c.GetInt("limits.max_connections_per_client"));
  o.handle_signals = true;
  return o;
}

}  // namespace edgeprune::server
