#include "common/http/tls_stream.hpp"

#include <boost/asio/ssl/error.hpp>

#include <openssl/err.h>

#include <cerrno>
#include <new>

namespace edgeprune::http {

namespace net = boost::asio;

TlsStream::TlsStream(Socket&& socket, net::ssl::context& context)
    : impl_(std::make_shared<Impl>(std::move(socket))) {
  ssl_ = SSL_new(context.native_handle());
  if (!ssl_) throw std::bad_alloc();
  // Partial writes and a moving buffer: Beast retries a write with what is left, from wherever
  // its buffer sits then. Release buffers: an idle connection keeps no 17 KiB record buffers.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                         SSL_MODE_RELEASE_BUFFERS);
  // Read ahead: one recv takes in whatever has arrived, not a record header and then its body
  // in two system calls.
  SSL_set_read_ahead(ssl_, 1);
  boost::system::error_code ignored;
  impl_->socket.non_blocking(true, ignored);
  SSL_set_fd(ssl_, static_cast<int>(impl_->socket.native_handle()));
  SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() {
  boost::system::error_code ignored;
  impl_->timer.cancel();
  impl_->socket.close(ignored);
  SSL_free(ssl_);
}

void TlsStream::expires_after(std::chrono::steady_clock::duration d) {
  impl_->deadline = std::chrono::steady_clock::now() + d;
  // A deadline that passed while no operation was pending cut nothing: the new one starts clean.
  impl_->timed_out = false;
  // A wait already pending at or before the new deadline re-arms itself when it fires; only an
  // earlier deadline needs the timer moved.
  if (impl_->armed && impl_->timer.expiry() <= impl_->deadline) return;
  ArmTimer(impl_);
}

void TlsStream::ArmTimer(const std::shared_ptr<Impl>& impl) {
  impl->timer.expires_at(impl->deadline);  // cancels a pending wait; its handler sees aborted
  impl->armed = true;
  impl->timer.async_wait([weak = std::weak_ptr<Impl>(impl)](const boost::system::error_code& ec) {
    if (ec) return;  // moved or cancelled: whoever did so owns the timer now
    auto impl = weak.lock();
    if (!impl) return;
    impl->armed = false;
    if (std::chrono::steady_clock::now() < impl->deadline) return ArmTimer(impl);  // moved later
    impl->timed_out = true;
    boost::system::error_code ignored;
    impl->socket.cancel(ignored);
  });
}

void TlsStream::cancel() {
  boost::system::error_code ignored;
  impl_->socket.cancel(ignored);
}

void TlsStream::close() {
  boost::system::error_code ignored;
  impl_->timer.cancel();
  impl_->armed = false;
  impl_->socket.close(ignored);
}

bool TlsStream::Step(Kind kind, void* data, std::size_t size, boost::system::error_code* ec,
                     std::size_t* n, net::socket_base::wait_type* wait) {
  *n = 0;
  *ec = {};
  if (impl_->timed_out) {
    *ec = boost::beast::error::timeout;
    return true;
  }
  if (!impl_->socket.is_open()) {
    *ec = net::error::bad_descriptor;
    return true;
  }
  if ((kind == Kind::kRead || kind == Kind::kWrite) && size == 0) return true;
  ERR_clear_error();  // SSL_get_error reads the thread's error queue
  int r = 0;
  std::size_t done = 0;
  switch (kind) {
    case Kind::kHandshake: r = SSL_do_handshake(ssl_); break;
    case Kind::kRead: r = SSL_read_ex(ssl_, data, size, &done); break;
    case Kind::kWrite: r = SSL_write_ex(ssl_, data, size, &done); break;
    case Kind::kShutdown:
      r = SSL_shutdown(ssl_);  // 0: our close_notify is out; the peer's is not awaited
      if (r == 0) r = 1;
      break;
  }
  if (r == 1) {
    *n = done;
    return true;
  }
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ: *wait = net::socket_base::wait_read; return false;
    case SSL_ERROR_WANT_WRITE: *wait = net::socket_base::wait_write; return false;
    case SSL_ERROR_ZERO_RETURN: *ec = net::error::eof; return true;  // the peer's close_notify
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        // Without an OpenSSL error: errno's, or an end of file without close_notify.
        *ec = errno != 0 ? boost::system::error_code(errno, boost::system::system_category())
                         : boost::system::error_code(net::ssl::error::stream_truncated);
        return true;
      }
      [[fallthrough]];
    default: {
      const unsigned long e = ERR_get_error();
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        *ec = net::ssl::error::stream_truncated;
      } else {
        *ec = boost::system::error_code(static_cast<int>(e), net::error::get_ssl_category());
      }
      return true;
    }
  }
}

}  // namespace edgeprune::http
