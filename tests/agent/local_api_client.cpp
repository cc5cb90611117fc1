#include "local_api_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>

namespace edgeprune::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

struct PlainClient::Impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  std::uint16_t port = 0;
  bool connected = false;

  void Connect() {
    stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    connected = true;
  }
};

PlainClient::PlainClient(std::uint16_t port) : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
}

PlainClient::~PlainClient() {
  beast::error_code ignored;
  impl_->stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
}

PlainResponse PlainClient::Send(const std::string& method, const std::string& target,
                                const std::string& body,
                                const std::map<std::string, std::string>& headers) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!impl_->connected) impl_->Connect();
    bhttp::request<bhttp::string_body> req(bhttp::string_to_verb(method), target, 11);
    req.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    beast::error_code ec;
    bhttp::write(impl_->stream, req, ec);
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (!ec) bhttp::read(impl_->stream, impl_->buffer, parser, ec);
    if (ec) {
      // The server closed a kept-alive connection (or refused the request): reconnect once.
      impl_->stream.close();
      impl_->buffer.clear();
      impl_->connected = false;
      if (attempt == 0) continue;
      return PlainResponse{};
    }
    auto res = parser.release();
    PlainResponse out;
    out.status = res.result_int();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = std::move(res.body());
    if (!res.keep_alive()) {
      impl_->stream.close();
      impl_->connected = false;
    }
    return out;
  }
  return PlainResponse{};
}

PlainResponse PlainClient::SendHeadOnly(const std::string& method, const std::string& target,
                                        std::uint64_t declared_length) {
  if (!impl_->connected) impl_->Connect();
  const std::string head = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                           "Content-Type: application/json\r\nContent-Length: " +
                           std::to_string(declared_length) + "\r\n\r\n";
  beast::error_code ec;
  net::write(impl_->stream.socket(), net::buffer(head), ec);
  bhttp::response_parser<bhttp::string_body> parser;
  if (!ec) bhttp::read(impl_->stream, impl_->buffer, parser, ec);
  impl_->stream.close();
  impl_->buffer.clear();
  impl_->connected = false;
  if (ec) return PlainResponse{};
  PlainResponse out;
  out.status = parser.get().result_int();
  out.body = parser.get().body();
  return out;
}

}  // namespace edgeprune::testing
