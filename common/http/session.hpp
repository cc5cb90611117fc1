#pragma once
// One TLS connection: handshake, then a keep-alive loop of read request → route → write response,
// each step with its own deadline. Internal to the HTTPS server.
//
// Thread-safety: a Session runs on its io_context, which one thread runs (see server.hpp), so its
// handlers never overlap; others reach it only by posting there. ServerCore's registry is guarded
// by a mutex.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "edgeprune/common/tls.hpp"
#include "common/http/metrics.hpp"
#include "common/http/router.hpp"
#include "common/http/server.hpp"
#include "common/http/spool_file.hpp"
#include "common/http/tls_stream.hpp"

namespace edgeprune::http {

class Session;

// What every connection shares with the server, and the registry the drain walks.
struct ServerCore {
  ServerOptions options;
  std::shared_ptr<boost::asio::ssl::context> tls;
  std::shared_ptr<const Router> router;
  std::shared_ptr<HttpMetrics> metrics;
  std::shared_ptr<boost::asio::thread_pool> blocking_pool;  // null: blocking routes run inline
  std::function<void()> on_drained;  // called (from any thread) when the last session leaves a drain

  // Connection caps (ServerOptions::max_connections, max_connections_per_client): false when
  // this new connection from `address` is over a cap (the caller closes it at once). Every
  // true is matched by one ReleaseConnection, from the session's destructor.
  bool AcquireConnection(const std::string& address);
  void ReleaseConnection(const std::string& address);

  // Returns false when the server is draining: the session must not start.
  bool Register(Session* s, std::weak_ptr<Session> w);
  void Unregister(Session* s);
  // Marks the core draining and asks every live session to finish; returns how many were live.
  std::size_t BeginDrain();
  bool draining() const { return draining_flag_.load(std::memory_order_acquire); }

 private:
  std::mutex mutex_;
  bool draining_ = false;
  std::atomic<bool> draining_flag_{false};  // read lock-free by sessions building a response
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
  std::mutex connections_mu_;
  std::size_t connections_ = 0;
  std::unordered_map<std::string, std::size_t> per_client_;  // address → open connections
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // The concrete executor, not Asio's type-erased default: every handler of every request went
  // through any_io_executor's copies and virtual calls (about 6 % of the server's CPU under wrk).
  using Executor = TlsStream::executor_type;
  using Socket = TlsStream::Socket;

  // remote_address: the peer's IP as text, already counted by core->AcquireConnection.
  Session(Socket&& socket, std::shared_ptr<ServerCore> core,
          std::string remote_address);
  ~Session();

  void Run();
  // Posted by the drain: close now if idle, else after the current response.
  void Drain();

 private:
  using Stream = TlsStream;
  using HeaderParser = boost::beast::http::request_parser<boost::beast::http::empty_body>;
  using StringParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
  using DiscardParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;
  using FileParser = boost::beast::http::request_parser<boost::beast::http::basic_file_body<SpoolFile>>;

  void OnRun();
  void OnHandshake(boost::beast::error_code ec);
  void DoReadHeader();
  void OnHeader(boost::beast::error_code ec);
  // A route with a spool_dir: creates the body's private file there and the parser writing it.
  Status OpenSpool(const std::string& dir);
  void ReadBody();
  void ReadSpooledPiece();
  void OnRequest(boost::beast::error_code ec);
  void ReadDiscard();
  void OnDiscard(boost::beast::error_code ec);
  // The request was refused from its header (404, 401, 403...): answer without reading the body.
  void Refuse(Router::Outcome outcome);
  // A response the session itself produces (413, 431, 400) before any route ran.
  void SendError(HttpStatus status, const std::string& code, const std::string& message,
                 bool keep_alive);
  void Send(Response response, const std::string* route, bool keep_alive);
  void OnWrite(boost::beast::error_code ec, bool keep_alive, const std::string* route, unsigned status);
  void DoClose();
  std::string NextRequestId();

  Stream stream_;
  std::shared_ptr<ServerCore> core_;
  boost::beast::flat_buffer buffer_;
  std::optional<HeaderParser> header_parser_;
  std::optional<StringParser> parser_;
  std::optional<FileParser> file_parser_;     // instead of parser_ for a spooled body
  std::shared_ptr<SpooledBody> spooled_;      // its file, removed with the last reference
  std::optional<DiscardParser> discard_parser_;
  std::shared_ptr<void> response_;  // the response being written
  std::optional<tls::PeerCertificate> peer_;
  std::string remote_address_;
  RequestContext ctx_;              // the request being served, built from its header
  Router::Admission admission_;     // its route, decided before the body is read
  std::optional<Router::Outcome> after_discard_;  // sent once a refused request's body is dropped
  std::uint64_t body_limit_ = 0;    // the admitted route's body limit
  Verb method_ = Verb::unknown;
  unsigned version_ = 11;
  std::string request_id_;
  std::chrono::steady_clock::time_point started_;
  bool busy_ = false;      // between a complete request header and its response written
  bool draining_ = false;
  bool registered_ = false;
  // Where a refused body is read and dropped; allocated when a body is dropped and released
  // after, so that a session (one per open connection) is not a 16 KiB allocation.
  std::unique_ptr<char[]> scratch_;
};

}  // namespace edgeprune::http
