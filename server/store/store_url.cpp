#include "server/store/store_url.hpp"

#include <libpq-fe.h>

#include <map>

namespace edgeprune::store {
namespace {

Error BadUrl(const std::string& why) {
  return MakeError(ErrorKind::kInvalidArgument, "invalid_store_url", "store.url " + why);
}

// The password part of "scheme://user:password@host…", so a message can be scrubbed of it.
std::string RawPassword(std::string_view url) {
  const std::size_t start = url.find("://");
  if (start == std::string_view::npos) return "";
  std::string_view rest = url.substr(start + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  const std::size_t at = rest.rfind('@');
  if (at == std::string_view::npos) return "";
  const std::string_view userinfo = rest.substr(0, at);
  const std::size_t colon = userinfo.find(':');
  return colon == std::string_view::npos ? "" : std::string(userinfo.substr(colon + 1));
}

std::string Scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

Result<StoreLocation> ParsePostgres(std::string_view url) {
  const std::string text(url);
  const std::string raw_password = RawPassword(url);
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(text.c_str(), &err);
  if (options == nullptr) {
    std::string why = err != nullptr ? err : "cannot be parsed";
    if (err != nullptr) PQfreemem(err);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return BadUrl("is not a valid PostgreSQL URL: " + Scrub(why, raw_password));
  }
  std::map<std::string, std::string> set;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) set[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  std::string display = "postgresql://";
  if (set.count("user") != 0) display += set["user"] + "@";
  const std::string host = set.count("host") != 0 ? set["host"] : "";
  const bool socket_dir = !host.empty() && host.front() == '/';
  if (!socket_dir) display += host;
  if (set.count("port") != 0 && !socket_dir) display += ":" + set["port"];
  display += "/" + (set.count("dbname") != 0 ? set["dbname"] : "");
  if (socket_dir) display += "?host=" + host;
  return StoreLocation{Dialect::kPostgres, text, display};
}

}  // namespace

Result<StoreLocation> ParseStoreUrl(std::string_view url, const std::string& data_dir) {
  if (url.empty()) {
    const std::string file = data_dir + "/edgeprune.db";
    return StoreLocation{Dialect::kSqlite, file, file};
  }
  const std::size_t colon = url.find("://");
  if (colon == std::string_view::npos) {
    return BadUrl("must start with sqlite:// or postgresql:// (or be empty for " + data_dir +
                  "/edgeprune.db)");
  }
  const std::string_view scheme = url.substr(0, colon);
  if (scheme == "sqlite") {
    const std::string path(url.substr(colon + 3));
    if (path.empty() || path.front() != '/') {
      return BadUrl("must name an absolute file as sqlite:///path/to/file.db");
    }
    if (path.back() == '/') return BadUrl("names a directory, not a database file: " + path);
    return StoreLocation{Dialect::kSqlite, path, path};
  }
  if (scheme == "postgresql" || scheme == "postgres") return ParsePostgres(url);
  // Echo the scheme only: the rest may hold a password.
  return BadUrl("has the unknown scheme '" + std::string(scheme.substr(0, 32)) +
                "'; use sqlite:// or postgresql://");
}

Result<std::unique_ptr<Database>> OpenStore(const StoreLocation& location,
                                            const OpenOptions& options) {
  if (location.dialect == Dialect::kPostgres) {
    return Database::OpenPostgres(location.target, location.display, options);
  }
  return Database::Open(location.target, options);
}

}  // namespace edgeprune::store
