#pragma once
// The standard process_* series every Prometheus client library exports (resident and virtual
// memory, CPU seconds, open descriptors, start time), read from /proc/self at scrape time and
// appended to GET /metrics. Both the server and the agent serve them, so one dashboard panel
// shows the memory of either; names follow the client libraries' convention so existing
// dashboards and alerts work unchanged. Where /proc is missing (not Linux) nothing is appended.
//
// Thread-safety: stateless; safe from any thread.

#include <string>

namespace edgeprune::http {

void AppendProcessMetrics(std::string& out);

}  // namespace edgeprune::http
