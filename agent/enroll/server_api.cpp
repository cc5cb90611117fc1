#include "agent/enroll/server_api.hpp"

#include <charconv>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/tls.hpp"
#include "edgeprune/common/wire/budget.hpp"

namespace edgeprune::agent {
namespace {

ErrorKind KindForStatus(int status) {
  if (status == 401) return ErrorKind::kUnauthenticated;
  if (status == 403) return ErrorKind::kPermissionDenied;
  if (status == 404) return ErrorKind::kNotFound;
  if (status == 409) return ErrorKind::kConflict;
  if (status == 413) return ErrorKind::kPayloadTooLarge;
  if (status == 429) return ErrorKind::kResourceExhausted;
  if (status >= 400 && status < 500) return ErrorKind::kInvalidArgument;
  return ErrorKind::kUnavailable;
}

// A 4xx other than 401/403 (identity: re-enroll or renew, then retry) and 429 (later) means the
// server will refuse the same request again; 5xx and transport failures may pass later.
Retry RetryForStatus(int status) {
  if (status >= 400 && status < 500 && status != 401 && status != 403 && status != 429) {
    return Retry::kPermanent;
  }
  return Retry::kTransient;
}

}  // namespace

Result<ServerUrl> ParseServerUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return PermanentError(ErrorKind::kInvalidArgument, "invalid_server_url",
                          "server URL '" + url + "' " + why);
  };
  constexpr std::string_view kScheme = "https://";
  if (url.rfind(kScheme, 0) != 0) return bad("must start with https://");
  std::string rest = url.substr(kScheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) return bad("must be https://host[:port]");
  ServerUrl out;
  std::string port_text;
  if (rest.front() == '[') {  // [IPv6]:port
    auto close = rest.find(']');
    if (close == std::string::npos) return bad("has an unclosed '['");
    out.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return bad("has junk after ']'");
      port_text = rest.substr(close + 2);
    }
  } else {
    auto colon = rest.rfind(':');
    out.host = rest.substr(0, colon);
    if (colon != std::string::npos) port_text = rest.substr(colon + 1);
  }
  if (out.host.empty()) return bad("has no host");
  if (!port_text.empty() || rest.find(':') != std::string::npos) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      return bad("has an invalid port");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  return out;
}

Result<std::unique_ptr<ServerApi>> ServerApi::Connect(const ServerApiOptions& o) {
  EP_ASSIGN_OR_RETURN(ServerUrl url, ParseServerUrl(o.server_url));
  EP_ASSIGN_OR_RETURN(auto ctx, tls::MakeClientContext({o.server_ca_file, o.cert_file, o.key_file}));
  http::ClientOptions co;
  co.host = url.host;
  co.port = url.port;
  co.tls = std::move(ctx);
  co.timeout = o.timeout;
  // Variant payload chunks (8 MiB by default) come over this connection too.
  co.body_limit = 16 * 1024 * 1024;
  co.user_agent = "edgeprune-agent/0.1.0";
  return std::unique_ptr<ServerApi>(new ServerApi(std::make_unique<http::HttpsClient>(co)));
}

Result<boost::json::object> ServerApi::Call(const std::string& method, const std::string& target,
                                            const boost::json::object& body) {
  http::ClientRequest req;
  req.method = method;
  req.target = target;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = boost::json::serialize(body);
  EP_ASSIGN_OR_RETURN(http::ClientResponse resp, client_->Send(req));
  auto parsed = json::ParseObject(resp.body);
  if (resp.status < 200 || resp.status >= 300) {
    std::string code = "http_" + std::to_string(resp.status);
    std::string message = method + " " + target + " answered " + std::to_string(resp.status);
    if (parsed.ok()) {
      if (auto err = json::GetObject(*parsed, "error"); err.ok()) {
        code = json::GetString(*err, "code").value_or(code);
        message += ": " + json::GetString(*err, "message").value_or("");
      }
    }
    return MakeError(KindForStatus(resp.status), code, message, RetryForStatus(resp.status));
  }
  // The server did it (2xx) but its answer does not parse: asking again would do it twice.
  if (!parsed.ok()) {
    return parsed.error()
        .WithContext(method + " " + target + " response")
        .WithRetry(Retry::kPermanent);
  }
  return parsed;
}

Result<wire::CertificateGrant> ServerApi::Enroll(const wire::EnrollRequest& request) {
  EP_ASSIGN_OR_RETURN(auto o, Call("POST", "/agent/v1/enroll", wire::ToJson(request)));
  return wire::CertificateGrantFromJson(o);
}

Result<wire::CertificateGrant> ServerApi::Renew(const std::string& csr_pem) {
  EP_ASSIGN_OR_RETURN(auto o, Call("POST", "/agent/v1/renew", wire::ToJson(wire::RenewRequest{csr_pem})));
  return wire::CertificateGrantFromJson(o);
}

Result<Budget> ServerApi::PutProfile(const wire::DeviceProfile& profile) {
  EP_ASSIGN_OR_RETURN(auto o, Call("PUT", "/agent/v1/profile", wire::ToJson(profile)));
  EP_ASSIGN_OR_RETURN(auto b, json::GetObject(o, "budget"));
  return wire::BudgetFromJson(b);
}

Result<wire::HeartbeatResponse> ServerApi::Heartbeat(const wire::Heartbeat& heartbeat) {
  EP_ASSIGN_OR_RETURN(auto o, Call("POST", "/agent/v1/heartbeat", wire::ToJson(heartbeat)));
  return wire::HeartbeatResponseFromJson(o);
}

Status ServerApi::PostVariantEvent(const std::string& variant_id, const std::string& event,
                                   const std::string& reason) {
  boost::json::object body{{"event", event}};
  if (!reason.empty()) body["reason"] = reason.substr(0, 1024);
  EP_ASSIGN_OR_RETURN(auto o, Call("POST", "/agent/v1/variants/" + variant_id + "/events", body));
  (void)o;
  return Ok();
}

}  // namespace edgeprune::agent
