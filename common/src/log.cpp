#include "edgeprune/common/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

#include "edgeprune/common/log_safety.hpp"

namespace edgeprune::log {
namespace {

std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;

// %V: the message with control characters escaped. Log lines carry strings from the network
// (host names, event reasons, paths); a raw newline would let a client forge a whole log line.
class EscapedMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string escaped = Escape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessage>();
  }
};

spdlog::sink_ptr SharedSink() {
  static spdlog::sink_ptr sink = [] {
    auto s = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    s->set_formatter(MakeFormatter());
    return spdlog::sink_ptr(s);
  }();
  return sink;
}

}  // namespace

std::string Escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::unique_ptr<spdlog::formatter> MakeFormatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  f->add_flag<EscapedMessage>('V').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %V");
  return f;
}

bool Throttle::Allow(std::uint64_t* suppressed) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t next = next_ns_.load(std::memory_order_relaxed);
  const std::int64_t period_ns = std::chrono::nanoseconds(period_).count();
  // One thread wins the slot per period; everyone else counts as suppressed.
  if (now < next || !next_ns_.compare_exchange_strong(next, now + period_ns)) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  *suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
  return true;
}

std::shared_ptr<spdlog::logger> Get(const std::string& component) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = spdlog::get(component)) return existing;
  // The shared sink carries the escaping formatter; a logger-level set_pattern would replace it.
  auto logger = std::make_shared<spdlog::logger>(component, SharedSink());
  logger->set_level(g_level);
  spdlog::register_logger(logger);
  return logger;
}

Status SetLevel(const std::string& level) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return MakeError(ErrorKind::kInvalidArgument, "invalid_log_level",
                     "log level '" + level + "' is not one of trace, debug, info, warn, error, off");
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_level = parsed;
  spdlog::apply_all([parsed](std::shared_ptr<spdlog::logger> l) { l->set_level(parsed); });
  return Ok();
}

}  // namespace edgeprune::log
