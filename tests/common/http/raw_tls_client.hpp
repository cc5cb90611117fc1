#pragma once
// A deliberately low-level TLS client for requests HttpsClient will not send (a declared body it
// never writes, chunked bodies, oversized headers): writes raw bytes, reads one response.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::http::testing {

class RawTlsClient {
 public:
  RawTlsClient(std::shared_ptr<boost::asio::ssl::context> tls, std::uint16_t port)
      : tls_(std::move(tls)), stream_(ioc_, *tls_) {
    boost::beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(20));
    boost::beast::get_lowest_layer(stream_).connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    stream_.handshake(boost::asio::ssl::stream_base::client);
  }

  void Write(const std::string& bytes) {
    boost::beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(20));
    boost::asio::write(stream_, boost::asio::buffer(bytes));
  }

  // Writes all of bytes or returns the error (e.g. broken pipe when the server closed first).
  boost::beast::error_code TryWrite(const std::string& bytes) {
    boost::beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(20));
    boost::beast::error_code ec;
    boost::asio::write(stream_, boost::asio::buffer(bytes), ec);
    return ec;
  }

  // Reads one response; an error code on failure (e.g. end_of_stream after a close).
  boost::beast::error_code Read(boost::beast::http::response<boost::beast::http::string_body>& res) {
    boost::beast::error_code ec;
    boost::beast::http::read(stream_, buffer_, res, ec);
    return ec;
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> tls_;
  boost::asio::io_context ioc_;
  boost::beast::ssl_stream<boost::beast::tcp_stream> stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace edgeprune::http::testing
