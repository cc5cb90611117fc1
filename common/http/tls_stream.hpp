#pragma once
// The server side of one TLS connection, with OpenSSL reading and writing the non-blocking socket
// itself, for the HTTPS server's sessions (a Beast AsyncStream: async_read_some/async_write_some,
// plus handshake and shutdown).
//
// Why not asio::ssl::stream: it keeps two 17 KiB record buffers and a BIO pair of two more per
// connection, 68 KiB of the 77 KiB an idle keep-alive connection cost (issue 18's target is
// 40 KiB), and copies every byte through the pair. Here OpenSSL owns the socket BIO with
// SSL_MODE_RELEASE_BUFFERS, so an idle connection holds no record buffer at all, and a request
// costs the recv and send OpenSSL makes and nothing more.
//
// Deadlines, as beast::basic_stream offers them: expires_after(d) bounds every operation until
// the next call; when it passes, the socket's waits are cancelled and the pending operation fails
// with beast::error::timeout (the stream is then unusable). One timer wait per connection is kept
// at the earliest deadline and moved only when a deadline comes earlier than it: a request that
// sets the same kind of deadline as the last one arms no timer at all.
//
// Thread-safety: like any Asio I/O object, one operation of each direction at a time, from the
// thread that runs its io_context.

#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/core/error.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace edgeprune::http {

class TlsStream {
 public:
  using executor_type = boost::asio::io_context::executor_type;
  using Socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, executor_type>;

  // Takes the accepted socket; the SSL object comes from `context` (its certificates, verify
  // mode and policy). Throws std::bad_alloc when OpenSSL cannot allocate one.
  TlsStream(Socket&& socket, boost::asio::ssl::context& context);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  executor_type get_executor() noexcept { return impl_->socket.get_executor(); }
  SSL* native_handle() noexcept { return ssl_; }
  Socket& socket() noexcept { return impl_->socket; }

  void expires_after(std::chrono::steady_clock::duration d);
  // Pending operations fail with operation_aborted.
  void cancel();
  void close();

  template <class Handler>
  auto async_handshake(Handler&& handler) {
    return Run(Kind::kHandshake, nullptr, 0,
               [h = std::forward<Handler>(handler)](boost::system::error_code ec, std::size_t) mutable {
                 std::move(h)(ec);
               });
  }
  template <class Buffers, class Handler>
  auto async_read_some(const Buffers& buffers, Handler&& handler) {
    auto b = boost::beast::buffers_front(buffers);
    return Run(Kind::kRead, b.data(), b.size(), std::forward<Handler>(handler));
  }
  // A sequence of small buffers (Beast's status line, fields and body) goes out as one TLS record
  // of up to 16 KiB: one buffer at a time, a small response was eleven records and eleven sends.
  template <class Buffers, class Handler>
  auto async_write_some(const Buffers& buffers, Handler&& handler) {
    constexpr std::size_t kCoalesce = 16 * 1024;
    auto front = boost::beast::buffers_front(buffers);
    const std::size_t total = boost::beast::buffer_bytes(buffers);
    if (front.size() >= total || front.size() >= kCoalesce) {
      return Run(Kind::kWrite, const_cast<void*>(front.data()), front.size(),
                 std::forward<Handler>(handler));
    }
    write_scratch_.resize(std::min(total, kCoalesce));
    boost::asio::buffer_copy(boost::asio::buffer(write_scratch_), buffers);
    return Run(Kind::kWrite, write_scratch_.data(), write_scratch_.size(),
               [this, h = std::forward<Handler>(handler)](boost::system::error_code ec,
                                                          std::size_t n) mutable {
                 // An idle connection keeps no large scratch buffer.
                 if (write_scratch_.capacity() > 1024) std::string().swap(write_scratch_);
                 std::move(h)(ec, n);
               });
  }
  // Sends close_notify; does not wait for the peer's (the caller closes the socket next).
  template <class Handler>
  auto async_shutdown(Handler&& handler) {
    return Run(Kind::kShutdown, nullptr, 0,
               [h = std::forward<Handler>(handler)](boost::system::error_code ec, std::size_t) mutable {
                 std::move(h)(ec);
               });
  }

 private:
  enum class Kind { kHandshake, kRead, kWrite, kShutdown };
  // The socket and the timer, shared with the timer's handler so that a deadline firing after
  // the stream is gone touches nothing.
  struct Impl {
    explicit Impl(Socket&& s) : socket(std::move(s)), timer(socket.get_executor()) {}
    Socket socket;
    boost::asio::steady_timer timer;
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    bool armed = false;      // a timer wait is pending
    bool timed_out = false;  // the deadline passed: every operation fails from now on
  };

  // Runs one OpenSSL call. True when the operation is over (*ec, *n set); false when it must
  // wait for the socket to become readable or writable (*wait set).
  bool Step(Kind kind, void* data, std::size_t size, boost::system::error_code* ec, std::size_t* n,
            boost::asio::socket_base::wait_type* wait);
  static void ArmTimer(const std::shared_ptr<Impl>& impl);

  template <class Handler>
  auto Run(Kind kind, void* data, std::size_t size, Handler&& handler) {
    // first: still inside the initiating call, so finishing must go through a post (Asio's rule
    // that a handler never runs inside the call that started its operation).
    return boost::asio::async_compose<Handler, void(boost::system::error_code, std::size_t)>(
        [this, kind, data, size, first = true, finished = false](
            auto& self, boost::system::error_code ec = {}, std::size_t n = 0) mutable {
          if (finished) return self.complete(ec, n);
          if (!first && ec) {
            if (impl_->timed_out) ec = boost::beast::error::timeout;
            return self.complete(ec, 0);
          }
          boost::asio::socket_base::wait_type wait = boost::asio::socket_base::wait_read;
          if (Step(kind, data, size, &ec, &n, &wait)) {
            if (!first) return self.complete(ec, n);
            finished = true;
            return boost::asio::post(impl_->socket.get_executor(),
                                     boost::beast::bind_front_handler(std::move(self), ec, n));
          }
          first = false;
          impl_->socket.async_wait(wait, std::move(self));
        },
        handler, impl_->socket);
  }

  std::shared_ptr<Impl> impl_;
  SSL* ssl_ = nullptr;
  std::string write_scratch_;  // a coalesced write in flight
};

}  // namespace edgeprune::http
