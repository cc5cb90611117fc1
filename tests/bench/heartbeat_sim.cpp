#include "bench/heartbeat_sim.hpp"

#include <boost/asio/post.hpp>

#include <utility>

namespace edgeprune::bench {
namespace {

const char* kHeartbeat =
    R"({"agent_state":"poll","uptime_s":1,"rss_bytes":1048576,"installed_variant_id":null})";
constexpr auto kOpTimeout = std::chrono::seconds(30);

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// One request on one stream: write `req`, read into `res`, call done(ec, status).
template <class Done>
void Exchange(SslStream& s, beast::flat_buffer& buf, const bhttp::request<bhttp::string_body>& req,
              bhttp::response<bhttp::string_body>& res, Done done) {
  beast::get_lowest_layer(s).expires_after(kOpTimeout);
  bhttp::async_write(s, req, [&s, &buf, &res, done](beast::error_code ec, std::size_t) mutable {
    if (ec) return done(ec, 0u);
    res = {};
    beast::get_lowest_layer(s).expires_after(kOpTimeout);
    bhttp::async_read(s, buf, res, [&res, done](beast::error_code ec2, std::size_t) mutable {
      done(ec2, ec2 ? 0u : res.result_int());
    });
  });
}

// Opens a TLS connection presenting `id`, verifying the server for 127.0.0.1.
template <class Done>
void OpenStream(std::optional<SslStream>& stream, net::io_context& ioc, const Shared& sh,
                const Identity& id, Done done) {
  stream.emplace(ioc, *sh.tls);
  SSL* ssl = stream->native_handle();
  if (SSL_use_certificate(ssl, id.cert.get()) != 1 || SSL_use_PrivateKey(ssl, id.key.get()) != 1) {
    return net::post(ioc, [done]() mutable { done(beast::error_code(net::error::invalid_argument)); });
  }
  stream->set_verify_callback(net::ssl::host_name_verification("127.0.0.1"));
  auto& tcp_layer = beast::get_lowest_layer(*stream);
  tcp_layer.expires_after(kOpTimeout);
  tcp_layer.async_connect(sh.server, [&stream, done](beast::error_code ec) mutable {
    if (ec) return done(ec);
    beast::error_code ignored;
    beast::get_lowest_layer(*stream).socket().set_option(tcp::no_delay(true), ignored);
    beast::get_lowest_layer(*stream).expires_after(kOpTimeout);
    stream->async_handshake(net::ssl::stream_base::client, done);
  });
}

}  // namespace

bhttp::request<bhttp::string_body> HeartbeatRequest() {
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/agent/v1/heartbeat", 11};
  req.set(bhttp::field::host, "127.0.0.1");
  req.set(bhttp::field::user_agent, "edgeprune-load");
  req.set(bhttp::field::content_type, "application/json");
  req.body() = kHeartbeat;
  req.keep_alive(true);
  req.prepare_payload();
  return req;
}

void SimAgent::Connect(std::function<void()> next) {
  const auto t0 = Clock::now();
  OpenStream(stream_, lane_.ioc, sh_, id_, [this, t0, next](beast::error_code ec) {
    if (ec) {
      lane_.Fail("connect: " + ec.message());
      broken_ = true;
      return next();
    }
    Exchange(*stream_, buf_, req_, res_, [this, t0, next](beast::error_code ec2, unsigned status) {
      if (ec2 || status != 200) {
        lane_.Fail(ec2 ? "first heartbeat: " + ec2.message()
                       : "first heartbeat: HTTP " + std::to_string(status));
        broken_ = true;
      } else {
        lane_.connect_ms.push_back(Ms(Clock::now() - t0));
      }
      next();
    });
  });
}

void SimAgent::Start(Clock::time_point first_due) {
  due_ = first_due;
  Wait();
}

void SimAgent::Wait() {
  if (due_ >= sh_.end) {
    --sh_.running;
    return;
  }
  timer_.expires_at(due_);
  timer_.async_wait([this](beast::error_code ec) {
    if (ec) return;
    Beat();
  });
}

void SimAgent::Beat() {
  const auto now = Clock::now();
  lane_.slip_ms.push_back(Ms(now - due_));
  if (broken_) {
    // The last exchange failed: reconnect, as a real agent would; the handshake counts in
    // this heartbeat's latency. (Streams are replaced here, in a timer handler, never inside
    // their own completion handlers.)
    ++lane_.reconnects;
    broken_ = false;
    OpenStream(stream_, lane_.ioc, sh_, id_, [this, now](beast::error_code ec) {
      if (ec) {
        lane_.Fail("reconnect: " + ec.message());
        broken_ = true;
        return Next();
      }
      Send(now);
    });
    return;
  }
  Send(now);
}

void SimAgent::Send(Clock::time_point sent) {
  ++lane_.sent;
  Exchange(*stream_, buf_, req_, res_, [this, sent](beast::error_code ec, unsigned status) {
    if (ec || status != 200) {
      lane_.Fail(ec ? "heartbeat: " + ec.message() : "heartbeat: HTTP " + std::to_string(status));
      broken_ = true;
    } else {
      lane_.keepalive_ms.push_back(Ms(Clock::now() - sent));
    }
    Next();
  });
}

void SimAgent::Next() {
  due_ += sh_.interval;
  Wait();
}

void FreshProber::Start(Clock::time_point first_due, std::atomic<int>& running) {
  running_ = &running;
  due_ = first_due;
  Wait();
}

void FreshProber::Wait() {
  if (due_ >= sh_.end || agents_.empty()) {
    --*running_;
    return;
  }
  timer_.expires_at(due_);
  timer_.async_wait([this](beast::error_code ec) {
    if (!ec) Probe();
  });
}

void FreshProber::Probe() {
  const auto t0 = Clock::now();
  const Identity& id = agents_[next_id_ % agents_.size()]->identity();
  next_id_ += 7;  // spread over the fleet
  OpenStream(stream_, lane_.ioc, sh_, id, [this, t0](beast::error_code ec) {
    if (ec) return Done(false);
    Exchange(*stream_, buf_, req_, res_, [this, t0](beast::error_code ec2, unsigned status) {
      if (!ec2 && status == 200) lane_.fresh_ms.push_back(Ms(Clock::now() - t0));
      Done(!ec2 && status == 200);
    });
  });
}

void FreshProber::Done(bool ok) {
  if (!ok) ++lane_.fresh_errors;
  // A client that opens a connection per heartbeat closes it after the response (the stream
  // object itself is replaced by the next probe, outside its own handlers).
  beast::error_code ignored;
  if (stream_) beast::get_lowest_layer(*stream_).socket().close(ignored);
  buf_.clear();
  due_ += period_;
  Wait();
}

void ConnectNext(Lane& lane, Shared& sh, std::vector<std::unique_ptr<SimAgent>>& agents) {
  if (lane.to_connect.empty()) return;
  const int i = lane.to_connect.front();
  lane.to_connect.pop_front();
  agents[static_cast<size_t>(i)]->Connect([&lane, &sh, &agents] {
    --sh.connect_pending;
    ConnectNext(lane, sh, agents);
  });
}

}  // namespace edgeprune::bench
