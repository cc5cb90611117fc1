#include "server/app/routes_command.hpp"

#include <CLI/CLI.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "edgeprune/common/cli.hpp"
#include "server/app/application.hpp"
#include "server/app/server_config.hpp"

namespace edgeprune::server {
namespace {

// Points stdout at /dev/null while alive: the throwaway database's first admin token, which the
// fleet prints on stdout, is nobody's and must not end up in the JSON.
class QuietStdout {
 public:
  QuietStdout() {
    std::fflush(stdout);
    saved_ = ::dup(STDOUT_FILENO);
    if (std::FILE* null = std::fopen("/dev/null", "w")) {
      ::dup2(::fileno(null), STDOUT_FILENO);
      std::fclose(null);
    }
  }
  ~QuietStdout() {
    std::fflush(stdout);
    if (saved_ >= 0) {
      ::dup2(saved_, STDOUT_FILENO);
      ::close(saved_);
    }
  }
  QuietStdout(const QuietStdout&) = delete;
  QuietStdout& operator=(const QuietStdout&) = delete;

 private:
  int saved_ = -1;
};

}  // namespace

const char* AuthName(http::Auth auth) {
  switch (auth) {
    case http::Auth::kPublic: return "public";
    case http::Auth::kViewer: return "viewer";
    case http::Auth::kOperator: return "operator";
    case http::Auth::kAdmin: return "admin";
    case http::Auth::kDevice: return "device";
  }
  return "unknown";
}

int RunRoutes(int argc, char** argv) {
  CLI::App app{"Print every route `serve` would serve with this configuration, as JSON",
               "edgeprune-server routes"};
  cli::ConfigFlags flags;
  cli::AddConfigFlags(app, flags);
  if (auto code = cli::Parse(app, argc, argv)) return *code;

  std::string tmpl = (std::filesystem::temp_directory_path() / "edgeprune-routes-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("edgeprune-server: mkdtemp");
    return 1;
  }
  const std::string scratch = tmpl;
  // Last, so it wins over --config, the environment and the caller's --set. The certificate is
  // never opened (the table does not depend on TLS), so `routes` needs none configured.
  flags.overrides.push_back("server.data_dir=" + scratch + "/data");
  // The scratch SQLite file, never a configured PostgreSQL database.
  flags.overrides.push_back("store.url=");
  flags.overrides.push_back("server.tls_cert=unused-by-routes");
  flags.overrides.push_back("server.tls_key=unused-by-routes");
  auto config = Config::Load(ServerConfigSchema(), flags.file, flags.overrides);
  if (!config.ok()) {
    std::fprintf(stderr, "edgeprune-server: %s\n", config.error().message.c_str());
    std::filesystem::remove_all(scratch);
    return 2;
  }
  Result<std::vector<http::Route>> routes = [&] {
    QuietStdout quiet;
    return Application(std::move(config).value()).Routes();
  }();
  std::error_code ec;
  std::filesystem::remove_all(scratch, ec);
  if (!routes.ok()) {
    std::fprintf(stderr, "edgeprune-server: %s\n", routes.error().ToString().c_str());
    return 1;
  }
  std::string out = "[\n";
  for (std::size_t i = 0; i < routes->size(); ++i) {
    const http::Route& r = (*routes)[i];
    boost::json::object o{{"method", std::string(boost::beast::http::to_string(r.method))},
                          {"path", r.pattern},
                          {"auth", AuthName(r.auth)},
                          {"name", r.name.empty() ? r.pattern : r.name}};
    out += "  " + boost::json::serialize(o) + (i + 1 < routes->size() ? ",\n" : "\n");
  }
  out += "]\n";
  std::fputs(out.c_str(), stdout);
  return 0;
}

}  // namespace edgeprune::server
