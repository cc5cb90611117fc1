// rollouts create|ls|show|pause|resume|promote|abort|approve (server/api/rollout_routes.cpp).
// `show --watch` redraws the per-phase device counts and the gates until the rollout ends or waits
// for an operator (paused, awaiting approval).
#include <memory>
#include <set>

#include "cli/command.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/json.hpp"

namespace edgeprune::ctl {
namespace {

namespace bj = boost::json;

const std::vector<std::string> kDeviceStates = {"pending", "downloading", "installed", "verified", "failed",
                                                "rolled_back", "stepped_down", "no_fit"};

bool Ended(const std::string& state) {
  return state == "completed" || state == "rolled_back" || state == "aborted";
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t at = 0, nl; at < text.size(); at = nl + 1) {
    nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(at, nl - at));
  }
  return out;
}

// The rollout as the operator follows it: state, phase counts, gates (and devices unless brief).
std::string RolloutView(const bj::value& r, bool brief) {
  const double phases = Number(r, "phases");
  std::string out = "rollout " + Field(r, "id") + "  model " + Field(r, "model_id") + "  state " +
                    Field(r, "state") + "  phase " + Fixed(Number(r, "phase") + 1, 0) + "/" +
                    Fixed(phases, 0) + "  devices " + Field(r, "devices") + "\n";
  if (!Member(r, "reason").is_null()) out += "reason: " + Field(r, "reason") + "\n";
  std::vector<std::string> header = {"phase", "reach"};
  header.insert(header.end(), kDeviceStates.begin(), kDeviceStates.end());
  Table counts(header);
  if (const auto& pc = Member(r, "phase_counts"); pc.is_array()) {
    for (const auto& p : pc.as_array()) {
      std::vector<std::string> row = {Fixed(Number(p, "index") + 1, 0), Field(p, "reach")};
      for (const auto& st : kDeviceStates) {
        const double n = Number(Member(p, "counts"), st, 0);
        row.push_back(n > 0 ? Fixed(n, 0) : ".");
      }
      counts.Row(row);
    }
  }
  out += counts.Render();
  Table gates({"gate", "value", "threshold", "samples", "judged", "tripped", "action"});
  if (const auto& g = Member(r, "gates"); g.is_array()) {
    for (const auto& x : g.as_array()) {
      gates.Row({Field(x, "gate"), Fixed(Number(x, "value"), 4), Fixed(Number(x, "threshold"), 4),
                 Field(x, "samples") + "/" + Field(x, "min_samples"), Field(x, "judged"),
                 Field(x, "tripped"), Field(x, "action")});
    }
  }
  if (gates.size() > 0) out += gates.Render();
  if (brief) return out;
  Table devices({"device", "phase", "state", "variant", "previous", "detail"});
  if (const auto& d = Member(r, "devices"); d.is_array()) {
    for (const auto& x : d.as_array()) {
      devices.Row({Field(x, "device_id"), Field(x, "phase"), Field(x, "state"), Field(x, "variant_id"),
                   Field(x, "previous_variant_id"), Field(x, "detail").substr(0, 60)});
    }
  }
  return out + devices.Render();
}

struct Create {
  std::string file, model, phases = "100%", cron;
  std::vector<std::string> devices, tags, gates;
  std::int64_t bake = 0;
};

// The spec from --file, or built from the flags.
Result<std::string> SpecOf(const Create& c) {
  if (!c.file.empty()) {
    if (!c.model.empty()) return UsageError("give --file or --model with flags, not both");
    auto text = fs::ReadFile(c.file == "-" ? "/dev/stdin" : c.file, 1 << 20);
    if (!text.ok()) return UsageError("cannot read the rollout spec: " + text.error().message);
    return *text;
  }
  if (c.model.empty()) return UsageError("give --file SPEC.json or --model MODEL");
  if (c.devices.empty() == c.tags.empty()) return UsageError("give --device or --tag (repeatable), not both");
  bj::array list;
  for (const auto& x : c.devices.empty() ? c.tags : c.devices) list.emplace_back(x);
  bj::object target{{c.devices.empty() ? "tags" : "devices", std::move(list)}};
  bj::array phases;
  for (std::size_t at = 0; at <= c.phases.size();) {
    auto comma = c.phases.find(',', at);
    if (comma == std::string::npos) comma = c.phases.size();
    std::string p = c.phases.substr(at, comma - at);
    at = comma + 1;
    const bool percent = !p.empty() && p.back() == '%';
    if (percent) p.pop_back();
    if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos || p.size() > 9) {
      return UsageError("--phases is a list like 1,25%,100% (a count or a percent each)");
    }
    bj::object phase{{percent ? "percent" : "count", std::stoll(p)}};
    if (c.bake > 0) phase["bake_seconds"] = c.bake;
    phases.push_back(std::move(phase));
  }
  bj::array gates;
  for (const auto& g : c.gates) {  // NAME:THRESHOLD:ACTION
    auto a = g.find(':'), b = g.rfind(':');
    if (a == std::string::npos || a == b) return UsageError("--gate is NAME:THRESHOLD:ACTION, e.g. probe_accuracy_drop:0.03:rollback");
    char* end = nullptr;
    const std::string threshold = g.substr(a + 1, b - a - 1);
    const double t = std::strtod(threshold.c_str(), &end);
    if (threshold.empty() || *end != '\0') return UsageError("--gate '" + g + "' has a threshold that is not a number");
    gates.push_back(bj::object{{"gate", g.substr(0, a)}, {"threshold", t}, {"action", g.substr(b + 1)}});
  }
  bj::object spec{{"model", c.model}, {"target", std::move(target)}, {"phases", std::move(phases)}};
  if (!gates.empty()) spec["gates"] = std::move(gates);
  return bj::serialize(spec);
}

Status WatchRollout(Session& s, const std::string& id, double interval) {
  LiveView view;
  for (;;) {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/rollouts/" + UrlEncode(id)));
    const std::string state = Field(r.json, "state");
    if (state == "-") {
      return MakeError(ErrorKind::kIo, "invalid_response", "the server's answer for rollout " + id + " has no state");
    }
    if (!s.json()) view.Show(Lines(RolloutView(r.json, true)));
    if (Ended(state)) {
      if (s.json()) PrintOut(r.raw);
      if (state == "completed") return Ok();
      return MakeError(ErrorKind::kFailedPrecondition, "rollout_" + state,
                       "rollout " + id + " ended " + state + " (reason: " + Field(r.json, "reason") + ")");
    }
    // A paused rollout, or one waiting for approval, does not move until an operator acts: the
    // watch hands it back instead of redrawing forever.
    if (state == "paused" || state == "awaiting_approval") {
      if (s.json()) PrintOut(r.raw);
      const std::string next = state == "paused" ? "resume, promote or abort it" : "approve or abort it";
      return MakeError(ErrorKind::kFailedPrecondition, "rollout_" + state,
                       "rollout " + id + " is " + state + " (reason: " + Field(r.json, "reason") +
                           "); " + next);
    }
    SleepSeconds(interval);
  }
}

}  // namespace

void AddRolloutCommands(CLI::App& app, Chosen& chosen) {
  auto* noun = app.add_subcommand("rollouts", "phased rollouts with gates")->require_subcommand(1);
  auto c = std::make_shared<Create>();
  auto* v = AddVerb(noun, "create", "start a rollout", chosen, Needs::kToken, [c](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(std::string spec, SpecOf(*c));
    EP_ASSIGN_OR_RETURN(auto r, s.api->Call("POST", "/api/v1/rollouts", spec));
    Print(s, r, [](const bj::value& x) { return RolloutView(x, false); });
    return Ok();
  });
  v->add_option("-f,--file", c->file, "the rollout spec as JSON (docs/api.md), - for stdin");
  v->add_option("--model", c->model, "model id, when the spec comes from flags");
  v->add_option("--device", c->devices, "target device (repeatable)");
  v->add_option("--tag", c->tags, "target devices carrying every one of these tags (repeatable)");
  v->add_option("--phases", c->phases, "cumulative reach of each phase, e.g. 1,25%,100%");
  v->add_option("--bake", c->bake, "seconds each phase bakes");
  v->add_option("--gate", c->gates, "NAME:THRESHOLD:ACTION (repeatable)");

  AddVerb(noun, "ls", "list rollouts", chosen, Needs::kToken, [](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/rollouts"));
    Print(s, r, [](const bj::value& list) {
      Table t({"id", "model", "state", "phase", "devices", "created (UTC)", "by"});
      for (const auto& x : Items(list)) {
        t.Row({Field(x, "id"), Field(x, "model_id"), Field(x, "state"),
               Fixed(Number(x, "phase") + 1, 0) + "/" + Field(x, "phases"), Field(x, "devices"),
               TimeMs(Number(x, "created_at")), Field(x, "created_by")});
      }
      return t.Render();
    });
    return Ok();
  });

  struct Show { std::string id; bool watch = false; double interval = 1.0; };
  auto sh = std::make_shared<Show>();
  v = AddVerb(noun, "show", "one rollout: phases, gates, devices", chosen, Needs::kToken, [sh](Session& s) -> Status {
    if (sh->watch) return WatchRollout(s, sh->id, sh->interval);
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/rollouts/" + UrlEncode(sh->id)));
    Print(s, r, [](const bj::value& x) { return RolloutView(x, false); });
    return Ok();
  });
  v->add_option("rollout", sh->id, "rollout id")->required();
  v->add_flag("-w,--watch", sh->watch, "redraw until the rollout completes, rolls back, is aborted or waits for an operator");
  v->add_option("--interval", sh->interval, "seconds between polls")->check(CLI::Range(0.1, 3600.0));

  for (const char* action : {"pause", "resume", "promote", "abort", "approve"}) {
    auto id = std::make_shared<std::string>();
    const std::string name = action;
    v = AddVerb(noun, name, name + " a rollout", chosen, Needs::kToken, [id, name](Session& s) -> Status {
      EP_ASSIGN_OR_RETURN(auto r, s.api->Call("POST", "/api/v1/rollouts/" + UrlEncode(*id) + "/" + name));
      Print(s, r, [](const bj::value& x) { return RolloutView(x, true); });
      return Ok();
    });
    v->add_option("rollout", *id, "rollout id")->required();
  }
}

}  // namespace edgeprune::ctl
