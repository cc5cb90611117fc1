#include "edgeprune/common/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace edgeprune::log {
namespace {

std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr SharedSink() {
  static spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}

}  // namespace

std::shared_ptr<spdlog::logger> Get(const std::string& component) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = std::make_shared<spdlog::logger>(component, SharedSink());
  logger->set_level(g_level);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
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
