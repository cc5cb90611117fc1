#pragma once
// The route table: {method, path pattern with {params}, handler, required auth}. The router
// matches a request, authenticates it as its route requires, runs the handler and turns every
// error into the JSON error response. Unknown path → 404; known path, wrong method → 405 + Allow.
// Matching and authentication need only the header (Admit), so a session decides them before it
// reads a body; the handler runs once the body is in (Run).
//
// Thread-safety: Add() only before serving; Handle() may then be called from any thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgeprune/common/result.hpp"
#include "common/http/authenticator.hpp"
#include "common/http/request_context.hpp"
#include "common/http/response.hpp"

namespace edgeprune::http {

using Handler = std::function<Result<Response>(const RequestContext&)>;

struct Route {
  Verb method = Verb::get;
  std::string pattern;  // "/api/v1/devices/{id}"
  Handler handler;
  Auth auth = Auth::kPublic;
  std::string name;  // metric label; the pattern when left empty
  // Largest request body this route reads; 0 means the server's default (limits.body_bytes).
  // Only routes that need big bodies (the model upload) raise it.
  std::uint64_t max_body_bytes = 0;
  // The handler may wait a long time (e.g. for a model worker): the HTTPS server runs it on its
  // blocking pool so the I/O threads keep answering everyone else.
  bool blocking = false;
};

class Router {
 public:
  // The authenticator may be null while no route needs credentials; such routes then answer 503.
  explicit Router(std::shared_ptr<Authenticator> authenticator = nullptr);

  // Refuses a malformed pattern, an empty handler or a duplicate method + pattern.
  Status Add(Route route);

  struct Outcome {
    Response response;
    const std::string* route_name;  // the matched route's name, or kUnmatched
  };
  // Never throws: handler exceptions become 500 internal_error. Admit + Run in one call.
  Outcome Handle(RequestContext& ctx) const;

  // Routing and authentication from the request line and headers alone (ctx.body is not looked
  // at), so the session can refuse a request before reading a byte of its body (issue 13: a
  // 60 MiB anonymous POST used to be buffered before its 401). Fills ctx.path, path and query
  // parameters and the principal.
  struct Admission {
    std::optional<Outcome> refused;    // set: answer this; the body is not wanted
    const Route* route = nullptr;      // set when admitted
  };
  Admission Admit(RequestContext& ctx) const;
  // Runs an admitted request's handler (ctx.body now read).
  Outcome Run(const Admission& admission, RequestContext& ctx) const;

  static const std::string kUnmatched;  // route label for 400/404 answers

 private:
  struct Segment {
    std::string text;
    bool is_param = false;
  };
  struct Entry {
    Route route;
    std::vector<Segment> segments;
  };

  static bool Match(const Entry& e, const std::vector<std::string>& parts,
                    std::map<std::string, std::string>* params);
  // refused is set to the principal when its credentials were valid but the route refused it.
  Result<Principal> Authenticate(Auth auth, const RequestContext& ctx,
                                 std::optional<Principal>* refused) const;

  std::shared_ptr<Authenticator> authenticator_;
  std::vector<Entry> entries_;
};

}  // namespace edgeprune::http
