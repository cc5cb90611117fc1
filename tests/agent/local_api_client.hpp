#pragma once
// A minimal synchronous plaintext HTTP/1.1 client (Boost.Beast) for the local API tests and
// benchmarks: one keep-alive connection to 127.0.0.1:port.
//
// Thread-safety: one client per thread.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace edgeprune::testing {

struct PlainResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

class PlainClient {
 public:
  explicit PlainClient(std::uint16_t port);
  ~PlainClient();
  // Throws boost::system::system_error when it cannot connect (a broken test, not a result);
  // returns status 0 when the server closed the connection without answering.
  PlainResponse Send(const std::string& method, const std::string& target, const std::string& body,
                     const std::map<std::string, std::string>& headers = {});
  // Sends only a request head that declares a body of declared_length bytes, then reads the
  // answer: how a server's body limit is tested without pushing the body.
  PlainResponse SendHeadOnly(const std::string& method, const std::string& target,
                             std::uint64_t declared_length);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgeprune::testing
