#include "common/http/router.hpp"

#include <boost/beast/http/verb.hpp>

#include <exception>

#include "edgeprune/common/log.hpp"
#include "common/http/url.hpp"

namespace edgeprune::http {
namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

int RequiredRank(Auth auth) {
  switch (auth) {
    case Auth::kViewer: return static_cast<int>(Role::kViewer);
    case Auth::kOperator: return static_cast<int>(Role::kOperator);
    case Auth::kAdmin: return static_cast<int>(Role::kAdmin);
    default: return 0;
  }
}

// A handler's error as the client sees it. A 500's message describes the server's inside (file
// paths, SQLite or LibTorch text): it goes to the log, the client gets the request id to quote.
// Other messages name the client's mistake and are kept, minus any server path in them.
Response HandlerErrorResponse(const Error& error, const RequestContext& ctx) {
  const HttpStatus status = StatusFor(error.kind);
  if (status == HttpStatus::internal_server_error) {
    log::Get("http")->error("{} {} [{}]: {}", std::string(boost::beast::http::to_string(ctx.method)),
                            ctx.path, ctx.request_id, error.ToString());
    return ErrorResponse(status, error.code,
                         "the server failed while handling this request (request id " +
                             ctx.request_id + "); its log has the details");
  }
  std::string message = RedactPaths(error.message);
  if (message != error.message) {
    log::Get("http")->info("{} {} [{}]: {}", std::string(boost::beast::http::to_string(ctx.method)),
                           ctx.path, ctx.request_id, error.ToString());
  }
  return ErrorResponse(status, error.code, message);
}

}  // namespace

const std::string Router::kUnmatched = "unmatched";

Router::Router(std::shared_ptr<Authenticator> authenticator)
    : authenticator_(std::move(authenticator)) {}

Status Router::Add(Route route) {
  if (route.pattern.empty() || route.pattern.front() != '/') {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_route",
                     "route pattern '" + route.pattern + "' must start with '/'");
  }
  if (!route.handler) {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_route",
                     "route " + route.pattern + " has no handler");
  }
  Entry entry;
  for (auto part : SplitPath(route.pattern)) {
    Segment s;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      s.is_param = true;
      s.text = std::string(part.substr(1, part.size() - 2));
      if (s.text.empty()) {
        return MakeError(ErrorKind::kInvalidArgument, "invalid_route",
                         "route pattern '" + route.pattern + "' has an unnamed parameter");
      }
    } else if (part.find_first_of("{}") != std::string_view::npos) {
      return MakeError(ErrorKind::kInvalidArgument, "invalid_route",
                       "route pattern '" + route.pattern + "' mixes text and a parameter in one segment");
    } else {
      s.text = std::string(part);
    }
    entry.segments.push_back(std::move(s));
  }
  for (const auto& e : entries_) {
    if (e.route.method == route.method && e.route.pattern == route.pattern) {
      return MakeError(ErrorKind::kConflict, "duplicate_route",
                       std::string(boost::beast::http::to_string(route.method)) + " " +
                           route.pattern + " is registered twice");
    }
  }
  if (route.name.empty()) route.name = route.pattern;
  entry.route = std::move(route);
  entries_.push_back(std::move(entry));
  return Ok();
}

bool Router::Match(const Entry& e, const std::vector<std::string>& parts,
                   std::map<std::string, std::string>* params) {
  if (e.segments.size() != parts.size()) return false;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const Segment& s = e.segments[i];
    if (s.is_param) {
      if (parts[i].empty()) return false;
      if (params) (*params)[s.text] = parts[i];
    } else if (s.text != parts[i]) {
      return false;
    }
  }
  return true;
}

Result<Principal> Router::Authenticate(Auth auth, const RequestContext& ctx,
                                       std::optional<Principal>* refused) const {
  if (auth == Auth::kPublic) return Principal{};
  if (!authenticator_) {
    return MakeError(ErrorKind::kUnavailable, "authentication_unavailable",
                     "this server has no authenticator configured for protected routes");
  }
  if (auth == Auth::kDevice) {
    if (!ctx.peer_certificate) {
      return MakeError(ErrorKind::kUnauthenticated, "client_certificate_required",
                       "this endpoint needs a device client certificate (mTLS)");
    }
    EP_ASSIGN_OR_RETURN(Principal p, authenticator_->AuthenticateDevice(*ctx.peer_certificate));
    if (p.kind != Principal::Kind::kDevice) {
      *refused = p;
      return MakeError(ErrorKind::kPermissionDenied, "device_required",
                       "this endpoint is for enrolled devices only");
    }
    return p;
  }
  auto header = ctx.Header("authorization");
  if (!header) {
    return MakeError(ErrorKind::kUnauthenticated, "missing_credentials",
                     "send an operator token as 'Authorization: Bearer <token>'");
  }
  constexpr std::string_view kScheme = "Bearer ";
  if (header->size() <= kScheme.size() || header->substr(0, kScheme.size()) != kScheme) {
    return MakeError(ErrorKind::kUnauthenticated, "invalid_credentials",
                     "the Authorization header must use the Bearer scheme");
  }
  EP_ASSIGN_OR_RETURN(Principal p, authenticator_->AuthenticateBearer(header->substr(kScheme.size())));
  if (p.kind != Principal::Kind::kUser) {
    *refused = p;
    return MakeError(ErrorKind::kPermissionDenied, "user_required",
                     "this endpoint is for operators, not devices");
  }
  if (static_cast<int>(p.role) < RequiredRank(auth)) {
    *refused = p;
    return MakeError(ErrorKind::kPermissionDenied, "insufficient_role",
                     std::string("this endpoint needs the ") +
                         RoleName(static_cast<Role>(RequiredRank(auth))) + " role; '" + p.id +
                         "' has " + RoleName(p.role));
  }
  return p;
}

Router::Admission Router::Admit(RequestContext& ctx) const {
  auto target = ParseTarget(ctx.target);
  if (!target) {
    return {Outcome{ErrorResponse(HttpStatus::bad_request, "invalid_target",
                                  "the query string has a malformed percent-escape"),
                    &kUnmatched}};
  }
  ctx.query_params = std::move(target->query);
  std::vector<std::string> parts;
  for (auto raw : SplitPath(target->raw_path)) {
    auto decoded = PercentDecode(raw);
    if (!decoded) {
      return {Outcome{ErrorResponse(HttpStatus::bad_request, "invalid_target",
                                    "the path has a malformed percent-escape"),
                      &kUnmatched}};
    }
    parts.push_back(std::move(*decoded));
  }
  ctx.path = target->raw_path;
  if (auto decoded = PercentDecode(target->raw_path)) ctx.path = std::move(*decoded);

  const Entry* found = nullptr;
  std::string allow;
  for (const auto& e : entries_) {
    if (!Match(e, parts, nullptr)) continue;
    if (e.route.method == ctx.method) {
      found = &e;
      break;
    }
    if (!allow.empty()) allow += ", ";
    allow += std::string(boost::beast::http::to_string(e.route.method));
  }
  if (!found) {
    if (!allow.empty()) {
      Response r = ErrorResponse(HttpStatus::method_not_allowed, "method_not_allowed",
                                 std::string(boost::beast::http::to_string(ctx.method)) +
                                     " is not allowed on " + ctx.path + "; allowed: " + allow);
      r.WithHeader("Allow", allow);
      return {Outcome{std::move(r), &kUnmatched}};
    }
    return {Outcome{ErrorResponse(HttpStatus::not_found, "not_found", "no endpoint at " + ctx.path),
                    &kUnmatched}};
  }
  Match(*found, parts, &ctx.path_params);
  const std::string* name = &found->route.name;

  std::optional<Principal> who;  // set when the credentials were valid but the route refused them
  auto principal = Authenticate(found->route.auth, ctx, &who);
  if (!principal.ok()) {
    if (who && ctx.method != boost::beast::http::verb::get &&
        ctx.method != boost::beast::http::verb::head) {
      authenticator_->Refused(*who, boost::beast::http::to_string(ctx.method), ctx.path,
                              principal.error());
    }
    return {Outcome{ErrorResponse(principal.error()), name}};
  }
  ctx.principal = std::move(principal).value();
  return {std::nullopt, &found->route};
}

Router::Outcome Router::Handle(RequestContext& ctx) const {
  Admission admission = Admit(ctx);
  if (admission.refused) return std::move(*admission.refused);
  return Run(admission, ctx);
}

Router::Outcome Router::Run(const Admission& admission, RequestContext& ctx) const {
  const Route& route = *admission.route;
  const std::string* name = &route.name;

  try {
    auto result = route.handler(ctx);
    if (!result.ok()) return {HandlerErrorResponse(result.error(), ctx), name};
    return {std::move(result).value(), name};
  } catch (const std::exception& e) {
    log::Get("http")->error("{} {} [{}]: handler threw: {}", std::string(boost::beast::http::to_string(ctx.method)),
                            ctx.path, ctx.request_id, e.what());
  } catch (...) {
    log::Get("http")->error("{} {} [{}]: handler threw a non-exception",
                            std::string(boost::beast::http::to_string(ctx.method)), ctx.path,
                            ctx.request_id);
  }
  return {ErrorResponse(HttpStatus::internal_server_error, "internal_error",
                        "the server failed while handling this request (request id " +
                            ctx.request_id + ")"),
          name};
}

}  // namespace edgeprune::http
