#include "agent/profile/measure.hpp"
#include "agent/state/states.hpp"

namespace edgeprune::agent {
namespace {

class ProfileState : public StateHandler {
 public:
  explicit ProfileState(AgentContext& ctx) : ctx_(ctx) {}

  StepResult Run() override {
    if (!ctx_.measured) {
      auto p = MeasureProfile({.data_dir = ctx_.dir.root(),
                               .bench_threads = ctx_.settings.bench_threads,
                               .bench_ms = ctx_.settings.bench_ms,
                               .caps = ctx_.settings.caps,
                               .backend_path = ctx_.settings.runtime_module,
                               .agent_bin = ""});
      if (!p.ok()) return {Event::kFailed, {}, p.error().ToString()};
      ctx_.measured = std::move(p).value();
    }
    auto api = ctx_.Api();
    if (!api.ok()) return {Event::kFailed, {}, api.error().ToString()};
    auto budget = (*api)->PutProfile(*ctx_.measured);
    if (!budget.ok()) return {EventForCallError(budget.error()), {}, budget.error().ToString()};
    std::string detail = "profile accepted";
    if (budget->max_macs) detail += ", budget max_macs=" + std::to_string(*budget->max_macs);
    return {Event::kDone, {}, detail};
  }

 private:
  AgentContext& ctx_;
};

}  // namespace

std::unique_ptr<StateHandler> MakeProfileState(AgentContext& ctx) {
  return std::make_unique<ProfileState>(ctx);
}

}  // namespace edgeprune::agent
