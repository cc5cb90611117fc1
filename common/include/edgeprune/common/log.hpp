#pragma once
// Named component loggers ("http", "store", "pruning", "agent" ...) on spdlog, one shared sink.
// Thread-safety: loggers are thread-safe; SetLevel may be called at any time.

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::log {

// Returns the logger for a component, creating it on first use with the global level.
std::shared_ptr<spdlog::logger> Get(const std::string& component);

// "trace", "debug", "info", "warn", "error", "off".
Status SetLevel(const std::string& level);

}  // namespace edgeprune::log
