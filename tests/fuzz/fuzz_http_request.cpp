// libFuzzer target for the HTTP request path up to and through routing: bytes as a client sends
// them on one keep-alive connection (up to four pipelined requests), read the way the session
// (common/http/session.cpp) reads them: Beast's header parser with the server's header limit,
// Router::Admit from the header alone (target, query, path parameters, credentials), the body
// limit judged from Content-Length, then the body (fixed-length or chunked) through Beast's
// parser with the route's limit, and Router::Run. The handlers exercise what requests feed:
// query parameters (pagination), Range/If-Range against a real file (FileResponse, ParseRange),
// and bodies (JSON parsing).
//
// Input: byte 0 selects the client (bit 0: a verified device certificate "device-1", bit 1:
// "device-unknown"); the rest is the byte stream.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "edgeprune/common/json.hpp"
#include "edgeprune/common/log.hpp"
#include "fuzz_input_file.hpp"
#include "common/http/map_authenticator.hpp"
#include "common/http/file_response.hpp"
#include "common/http/pagination.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using namespace edgeprune;
using namespace edgeprune::http;

namespace {

const ServerOptions kOptions{};

Result<Response> Json(const RequestContext& ctx) {
  EP_ASSIGN_OR_RETURN(auto body, json::ParseObject(ctx.body));
  return JsonResponse(boost::json::object{{"keys", body.size()}});
}

struct World {
  fuzz::InputFile payload{".bin"};
  std::string payload_path;
  std::unique_ptr<Router> router;

  World() {
    static const std::uint8_t bytes[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    payload_path = payload.Write(bytes, sizeof bytes - 1);
    auto auth = std::make_shared<testing::MapAuthenticator>();
    auth->tokens = {{"viewer", Role::kViewer}, {"operator", Role::kOperator}, {"admin", Role::kAdmin}};
    auth->devices = {"device-1"};
    router = std::make_unique<Router>(auth);
    auto add = [&](Verb verb, std::string pattern, Auth need, Handler h, std::uint64_t max_body = 0) {
      Route r;
      r.method = verb;
      r.pattern = std::move(pattern);
      r.auth = need;
      r.handler = std::move(h);
      r.max_body_bytes = max_body;
      if (!router->Add(std::move(r)).ok()) std::abort();
    };
    add(Verb::get, "/healthz", Auth::kPublic, [](const RequestContext&) -> Result<Response> {
      return TextResponse("ok", "text/plain");
    });
    add(Verb::get, "/api/v1/devices", Auth::kViewer, [](const RequestContext& ctx) -> Result<Response> {
      EP_ASSIGN_OR_RETURN(auto page, PageParams(ctx, 100, 1000));
      return JsonResponse(boost::json::object{{"limit", page.limit}});
    });
    add(Verb::get, "/api/v1/devices/{id}", Auth::kViewer, [](const RequestContext& ctx) -> Result<Response> {
      return TextResponse(std::string(*ctx.PathParam("id")), "text/plain");
    });
    add(Verb::patch, "/api/v1/devices/{id}", Auth::kOperator, Json);
    add(Verb::post, "/api/v1/enrollment-tokens", Auth::kAdmin, Json);
    add(Verb::post, "/api/v1/models", Auth::kOperator, Json, 256 * 1024);
    add(Verb::post, "/agent/v1/enroll", Auth::kPublic, Json);
    add(Verb::post, "/agent/v1/heartbeat", Auth::kDevice, Json);
    add(Verb::get, "/agent/v1/variants/{id}/payload", Auth::kDevice,
        [this](const RequestContext& ctx) -> Result<Response> {
          return FileResponse(ctx, payload_path, "application/octet-stream", "\"abc\"");
        });
    add(Verb::post, "/agent/v1/variants/{id}/events", Auth::kDevice, Json);
  }
};

// The session's reading of one request (OnHeader, Refuse, OnRequest). Returns false when the
// connection ends after it.
bool ServeOne(const World& world, std::string_view& input, const std::optional<tls::PeerCertificate>& peer) {
  bhttp::request_parser<bhttp::empty_body> header_parser;
  header_parser.header_limit(static_cast<std::uint32_t>(kOptions.header_limit));
  header_parser.body_limit(boost::none);
  header_parser.eager(false);
  beast::error_code ec;
  while (!header_parser.is_header_done()) {
    if (input.empty()) return false;  // the peer stopped mid-header: the idle timeout closes it
    const std::size_t used = header_parser.put(net::buffer(input.data(), input.size()), ec);
    input.remove_prefix(used);
    if (ec == bhttp::error::need_more) {
      if (used == 0) return false;
      ec = {};
      continue;
    }
    if (ec) return false;  // 431 or 400, then close
  }
  const auto& header = header_parser.get();
  RequestContext ctx;
  ctx.method = header.method();
  ctx.target = std::string(header.target());
  for (const auto& field : header) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto [it, inserted] = ctx.headers.emplace(std::move(name), std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());
  }
  ctx.peer_certificate = peer;
  ctx.request_id = "fuzz";
  ctx.remote_address = "127.0.0.1";
  auto admission = world.router->Admit(ctx);
  if (admission.refused) {
    if (admission.refused->response.status == HttpStatus::ok) std::abort();  // refusals refuse
    return false;  // the body, if any, is dropped or the connection closes; either way we stop
  }
  if (admission.route == nullptr) std::abort();
  const std::uint64_t limit =
      admission.route->max_body_bytes ? admission.route->max_body_bytes : kOptions.body_limit;
  if (auto length = header_parser.content_length(); length && *length > limit) return false;  // 413
  bhttp::request_parser<bhttp::string_body> parser(std::move(header_parser));
  parser.body_limit(limit);
  while (!parser.is_done()) {
    if (input.empty()) {
      parser.put_eof(ec);
      if (ec) return false;
      break;
    }
    const std::size_t used = parser.put(net::buffer(input.data(), input.size()), ec);
    input.remove_prefix(used);
    if (ec == bhttp::error::need_more) {
      if (used == 0) return false;
      ec = {};
      continue;
    }
    if (ec) return false;  // body_limit → 413, framing → 400
  }
  if (parser.get().body().size() > limit) std::abort();  // the limit held while reading
  ctx.body = std::move(parser.get().body());
  auto outcome = world.router->Run(admission, ctx);
  if (outcome.route_name == nullptr) std::abort();
  return parser.get().keep_alive();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)log::SetLevel("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const World world;
  if (size == 0) return 0;
  std::optional<tls::PeerCertificate> peer;
  if (data[0] & 1) peer = tls::PeerCertificate{.subject_cn = "device-1", .verified = true};
  if (data[0] & 2) peer = tls::PeerCertificate{.subject_cn = "device-unknown", .verified = true};
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  for (int i = 0; i < 4 && ServeOne(world, input, peer); ++i) {
  }
  return 0;
}
