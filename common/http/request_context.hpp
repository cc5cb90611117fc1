#pragma once
// What a handler sees of one request, and who sent it. Handlers never touch sockets: the session
// parses the request into a RequestContext, the router fills in path parameters and the principal.
//
// Thread-safety: plain value types; one RequestContext belongs to one request.

#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "edgeprune/common/role.hpp"
#include "edgeprune/common/tls.hpp"

namespace edgeprune::http {

using Verb = boost::beast::http::verb;

// The credential a route requires. Roles are ordered kViewer < kOperator < kAdmin; kDevice means
// a verified mTLS client certificate that the Authenticator maps to an enrolled device.
enum class Auth { kPublic, kViewer, kOperator, kAdmin, kDevice };

// Token roles belong to common/ (the fleet issues them without knowing about HTTP).
using edgeprune::ParseRole;
using edgeprune::Role;
using edgeprune::RoleName;

// Who made the request, as established by the Authenticator.
struct Principal {
  enum class Kind { kAnonymous, kUser, kDevice };
  Kind kind = Kind::kAnonymous;
  std::string id;             // token owner for users, device id for devices
  Role role = Role::kViewer;  // meaningful for users only
};

// A request body streamed to a private file instead of memory (routes with Route::spool_dir).
// The file goes when the last reference does, whatever the handler did: a handler that keeps the
// bytes copies or renames them elsewhere first.
struct SpooledBody {
  std::string path;
  std::uint64_t size = 0;
  SpooledBody() = default;
  SpooledBody(const SpooledBody&) = delete;
  SpooledBody& operator=(const SpooledBody&) = delete;
  ~SpooledBody();  // removes path
};

struct RequestContext {
  Verb method = Verb::unknown;
  std::string target;  // as received: path and query
  std::string path;    // percent-decoded path, no query
  std::map<std::string, std::string> path_params;   // "{id}" → value, percent-decoded
  std::map<std::string, std::string> query_params;  // percent-decoded; '+' means space
  std::map<std::string, std::string> headers;       // names lower-cased
  std::string body;  // empty when the body was spooled to a file
  std::shared_ptr<const SpooledBody> spooled_body;  // set for routes with Route::spool_dir
  std::optional<tls::PeerCertificate> peer_certificate;  // verified client certificate, if any
  std::string remote_address;  // the client's IP address as text ("" when unknown)
  Principal principal;
  std::string request_id;

  // The body's size in bytes, in memory or spooled.
  std::uint64_t BodySize() const { return spooled_body ? spooled_body->size : body.size(); }
  // Header by case-insensitive name.
  std::optional<std::string_view> Header(std::string_view name) const;
  std::optional<std::string_view> PathParam(std::string_view name) const;
  std::optional<std::string_view> QueryParam(std::string_view name) const;
};

}  // namespace edgeprune::http
