#include "agent/state/agent_context.hpp"

#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {

AgentContext::AgentContext(AgentSettings s, StateDir d)
    : settings(std::move(s)),
      dir(std::move(d)),
      jitter(std::chrono::milliseconds(1), std::chrono::milliseconds(1), std::random_device{}()) {}

std::optional<std::string> AgentContext::DesiredVariant() const {
  if (!last_heartbeat) return std::nullopt;
  return last_heartbeat->desired_state.variant_id;
}

Result<ServerApi*> AgentContext::Api() {
  if (!identity) {
    return MakeError(ErrorKind::kFailedPrecondition, "not_enrolled", "the agent is not enrolled");
  }
  if (!api_) {
    EP_ASSIGN_OR_RETURN(api_, ServerApi::Connect({identity->server_url, dir.server_ca_path(),
                                                  dir.certificate_path(), dir.key_path(),
                                                  settings.request_timeout}));
  }
  return api_.get();
}

void AgentContext::Report(const std::string& variant_id, const std::string& event,
                          const std::string& reason) {
  if (unsent.size() >= kMaxUnsent) {
    log::Get("agent")->warn("dropping the unsent {} event of variant {}", unsent.front().event,
                            unsent.front().variant_id);
    unsent.pop_front();
  }
  unsent.push_back({variant_id, event, reason});
  FlushReports();
}

void AgentContext::FlushReports() {
  while (!unsent.empty()) {
    const auto& e = unsent.front();
    const bool done = report ? report(e.variant_id, e.event, e.reason) : SendVariantEvent(e);
    if (!done) return;  // kept; the next flush retries
    unsent.pop_front();
  }
}

bool AgentContext::SendVariantEvent(const VariantEvent& e) {
  auto api = Api();
  Status sent =
      api.ok() ? (*api)->PostVariantEvent(e.variant_id, e.event, e.reason) : Status(api.error());
  if (sent.ok()) return true;
  // An event the server refuses as such would be refused again; anything else is retried.
  const bool retry = !sent.error().permanent();
  log::Get("agent")->warn("could not report {} of {} to the server{}: {}", e.event, e.variant_id,
                          retry ? " (kept for the next heartbeat)" : "", sent.error().ToString());
  return !retry;
}

}  // namespace edgeprune::agent
