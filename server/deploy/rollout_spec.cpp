#include "server/deploy/rollout_spec.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <set>
#include <string_view>

#include "edgeprune/common/json.hpp"

namespace edgeprune::deploy {
namespace bj = boost::json;
namespace {

constexpr std::size_t kMaxPhases = 20;
constexpr std::size_t kMaxGates = 20;
constexpr std::size_t kMaxOrderTags = 100;
constexpr std::int64_t kMaxBakeSeconds = 30LL * 24 * 3600;
constexpr std::int64_t kMaxCount = 10'000'000;

Error Invalid(const std::string& code, const std::string& message) {
  return MakeError(ErrorKind::kInvalidArgument, code, message);
}

Status OnlyKeys(const bj::object& o, std::initializer_list<std::string_view> keys,
                const std::string& where) {
  for (const auto& kv : o) {
    if (std::find(keys.begin(), keys.end(), std::string_view(kv.key())) == keys.end()) {
      return Invalid("invalid_field", where + ": unknown key '" + std::string(kv.key()) + "'");
    }
  }
  return Ok();
}

Result<bool> OptBool(const bj::object& o, std::string_view key, bool fallback) {
  if (!json::FindField(o, key)) return fallback;
  return json::GetBool(o, key);
}

Result<std::int64_t> IntIn(const bj::object& o, std::string_view key, std::int64_t fallback,
                           std::int64_t lo, std::int64_t hi, const std::string& where) {
  EP_ASSIGN_OR_RETURN(auto v, json::GetOptInt(o, key));
  const std::int64_t x = v.value_or(fallback);
  if (x < lo || x > hi) {
    return Invalid("invalid_field", where + "." + std::string(key) + " must be in [" +
                                        std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return x;
}

Result<RolloutTarget> TargetFromJson(const bj::object& o) {
  EP_RETURN_IF_ERROR(OnlyKeys(o, {"tags", "devices", "dynamic", "cap"}, "target"));
  bj::object selector;
  if (auto* t = json::FindField(o, "tags")) selector["tags"] = *t;
  if (auto* d = json::FindField(o, "devices")) selector["devices"] = *d;
  RolloutTarget t;
  EP_ASSIGN_OR_RETURN(t.selector, SelectorFromJson(selector));
  EP_ASSIGN_OR_RETURN(t.dynamic, OptBool(o, "dynamic", false));
  if (t.dynamic && t.selector.tags.empty()) {
    return Invalid("invalid_field", "target.dynamic needs target.tags: a list of ids cannot grow");
  }
  EP_ASSIGN_OR_RETURN(t.cap, json::GetOptInt(o, "cap"));
  if (t.cap && (*t.cap < 1 || *t.cap > kMaxCount)) {
    return Invalid("invalid_field", "target.cap must be in [1, " + std::to_string(kMaxCount) + "]");
  }
  return t;
}

Result<PhaseSpec> PhaseFromJson(const bj::object& o, const std::string& where) {
  EP_RETURN_IF_ERROR(OnlyKeys(
      o, {"percent", "count", "min_devices", "bake_seconds", "requires_approval"}, where));
  PhaseSpec p;
  EP_ASSIGN_OR_RETURN(p.percent, json::GetOptDouble(o, "percent"));
  EP_ASSIGN_OR_RETURN(p.count, json::GetOptInt(o, "count"));
  if (p.percent.has_value() == p.count.has_value()) {
    return Invalid("invalid_phases", where + " needs exactly one of percent or count");
  }
  if (p.percent && !(std::isfinite(*p.percent) && *p.percent > 0.0 && *p.percent <= 100.0)) {
    return Invalid("invalid_phases", where + ".percent must be in (0, 100]");
  }
  if (p.count && (*p.count < 1 || *p.count > kMaxCount)) {
    return Invalid("invalid_phases",
                   where + ".count must be in [1, " + std::to_string(kMaxCount) + "]");
  }
  EP_ASSIGN_OR_RETURN(p.min_devices, IntIn(o, "min_devices", 0, 0, kMaxCount, where));
  EP_ASSIGN_OR_RETURN(std::int64_t bake, IntIn(o, "bake_seconds", 0, 0, kMaxBakeSeconds, where));
  p.bake_ms = bake * 1000;
  EP_ASSIGN_OR_RETURN(p.requires_approval, OptBool(o, "requires_approval", false));
  return p;
}

Result<GateKind> GateKindFrom(const std::string& s) {
  for (GateKind k : {GateKind::kInstallFailureRate, GateKind::kOfflineAfterUpdate,
                     GateKind::kProbeAccuracyDrop, GateKind::kFeedbackAccuracyDrop,
                     GateKind::kP95OverSlo}) {
    if (s == GateName(k)) return k;
  }
  return Invalid("invalid_gate", "unknown gate '" + s +
                                     "' (install_failure_rate, offline_after_update, "
                                     "probe_accuracy_drop, feedback_accuracy_drop, p95_over_slo)");
}

Result<GateSpec> GateFromJson(const bj::object& o, const std::string& where) {
  EP_RETURN_IF_ERROR(OnlyKeys(o, {"gate", "threshold", "min_samples", "action"}, where));
  GateSpec g;
  EP_ASSIGN_OR_RETURN(std::string name, json::GetString(o, "gate"));
  EP_ASSIGN_OR_RETURN(g.kind, GateKindFrom(name));
  EP_ASSIGN_OR_RETURN(g.threshold, json::GetDouble(o, "threshold"));
  // Every gate value is a fraction: a rate of devices, or accuracy points on a 0..1 scale.
  if (!(std::isfinite(g.threshold) && g.threshold >= 0.0 && g.threshold <= 1.0)) {
    return Invalid("invalid_gate", where + ".threshold must be in [0, 1]");
  }
  EP_ASSIGN_OR_RETURN(g.min_samples, IntIn(o, "min_samples", 1, 1, kMaxCount, where));
  EP_ASSIGN_OR_RETURN(std::string action, json::GetString(o, "action"));
  if (action == "pause") {
    g.action = GateAction::kPause;
  } else if (action == "rollback") {
    g.action = GateAction::kRollback;
  } else if (action == "step_down") {
    // A smaller variant answers a latency breach; it cannot answer failed installs, silent
    // devices or lost accuracy (it would lose more).
    if (g.kind != GateKind::kP95OverSlo) {
      return Invalid("invalid_gate", where + ": step_down only answers p95_over_slo");
    }
    g.action = GateAction::kStepDown;
  } else {
    return Invalid("invalid_gate", where + ".action must be pause, rollback or step_down");
  }
  return g;
}

// One cron field: '*', or a comma list of numbers and ranges a-b within [lo, hi].
template <std::size_t N>
Result<std::bitset<N>> CronField(std::string_view text, int lo, int hi, const char* name) {
  std::bitset<N> bits;
  auto bad = [&] {
    return Invalid("invalid_window", std::string("maintenance_window.cron ") + name + " '" +
                                         std::string(text) + "' is not *, n, a-b or a list in [" +
                                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
  };
  if (text == "*") {
    for (int i = lo; i <= hi; ++i) bits.set(static_cast<std::size_t>(i));
    return bits;
  }
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    auto number = [&](std::string_view s, int* out) {
      if (s.empty() || s.size() > 2) return false;
      int v = 0;
      for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
      }
      *out = v;
      return v >= lo && v <= hi;
    };
    int a = 0, b = 0;
    const std::size_t dash = item.find('-');
    if (dash == std::string_view::npos) {
      if (!number(item, &a)) return bad();
      b = a;
    } else if (!number(item.substr(0, dash), &a) || !number(item.substr(dash + 1), &b) || a > b) {
      return bad();
    }
    for (int i = a; i <= b; ++i) bits.set(static_cast<std::size_t>(i));
    pos = comma + 1;
  }
  return bits;
}

Result<std::int64_t> OffsetMinutes(const std::string& s) {
  // "+HH:MM" / "-HH:MM", |offset| <= 14 h.
  auto digit = [&](std::size_t i) { return s[i] >= '0' && s[i] <= '9'; };
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-') || !digit(1) || !digit(2) || s[3] != ':' ||
      !digit(4) || !digit(5)) {
    return Invalid("invalid_window", "maintenance_window.utc_offset must look like +02:00");
  }
  const int h = (s[1] - '0') * 10 + (s[2] - '0');
  const int m = (s[4] - '0') * 10 + (s[5] - '0');
  if (h > 14 || m > 59 || h * 60 + m > 14 * 60) {
    return Invalid("invalid_window", "maintenance_window.utc_offset is beyond ±14:00");
  }
  return (s[0] == '-' ? -1 : 1) * static_cast<std::int64_t>(h * 60 + m);
}

}  // namespace

const char* GateName(GateKind kind) {
  switch (kind) {
    case GateKind::kInstallFailureRate: return "install_failure_rate";
    case GateKind::kOfflineAfterUpdate: return "offline_after_update";
    case GateKind::kProbeAccuracyDrop: return "probe_accuracy_drop";
    case GateKind::kFeedbackAccuracyDrop: return "feedback_accuracy_drop";
    case GateKind::kP95OverSlo: return "p95_over_slo";
  }
  return "unknown";
}

const char* ActionName(GateAction action) {
  switch (action) {
    case GateAction::kPause: return "pause";
    case GateAction::kRollback: return "rollback";
    case GateAction::kStepDown: return "step_down";
  }
  return "unknown";
}

Result<MaintenanceWindow> WindowFromJson(const bj::object& o) {
  EP_RETURN_IF_ERROR(OnlyKeys(o, {"cron", "duration_minutes", "utc_offset"}, "maintenance_window"));
  MaintenanceWindow w;
  EP_ASSIGN_OR_RETURN(w.cron, json::GetString(o, "cron"));
  if (w.cron.size() > 200) return Invalid("invalid_window", "maintenance_window.cron is too long");
  std::vector<std::string_view> fields;
  std::string_view rest(w.cron);
  while (!rest.empty()) {
    const std::size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const std::size_t end = std::min(rest.find(' '), rest.size());
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  if (fields.size() != 5) {
    return Invalid("invalid_window",
                   "maintenance_window.cron needs 5 fields: minute hour day month weekday");
  }
  EP_ASSIGN_OR_RETURN(w.minutes, CronField<60>(fields[0], 0, 59, "minute"));
  EP_ASSIGN_OR_RETURN(w.hours, CronField<24>(fields[1], 0, 23, "hour"));
  EP_ASSIGN_OR_RETURN(w.days, CronField<32>(fields[2], 1, 31, "day"));
  EP_ASSIGN_OR_RETURN(w.months, CronField<13>(fields[3], 1, 12, "month"));
  EP_ASSIGN_OR_RETURN(w.weekdays, CronField<7>(fields[4], 0, 6, "weekday"));
  EP_ASSIGN_OR_RETURN(w.duration_minutes,
                      IntIn(o, "duration_minutes", 60, 1, 7 * 24 * 60, "maintenance_window"));
  EP_ASSIGN_OR_RETURN(auto offset, json::GetOptString(o, "utc_offset"));
  if (offset) w.utc_offset = *offset;
  EP_ASSIGN_OR_RETURN(w.offset_minutes, OffsetMinutes(w.utc_offset));
  return w;
}

bool MaintenanceWindow::OpenAt(std::int64_t now_ms) const {
  const std::int64_t local_minute = (now_ms / 60'000) + offset_minutes;
  for (std::int64_t k = 0; k < duration_minutes; ++k) {
    const std::int64_t m = local_minute - k;
    const std::chrono::sys_days day{std::chrono::days{m >= 0 ? m / 1440 : (m - 1439) / 1440}};
    const std::int64_t in_day = m - day.time_since_epoch().count() * 1440;
    const std::chrono::year_month_day ymd(day);
    const std::chrono::weekday wd(day);
    if (minutes.test(static_cast<std::size_t>(in_day % 60)) &&
        hours.test(static_cast<std::size_t>(in_day / 60)) &&
        days.test(static_cast<unsigned>(ymd.day())) &&
        months.test(static_cast<unsigned>(ymd.month())) && weekdays.test(wd.c_encoding())) {
      return true;
    }
  }
  return false;
}

Result<RolloutSpec> RolloutSpecFromJson(const bj::object& o) {
  EP_RETURN_IF_ERROR(OnlyKeys(o,
                              {"model", "target", "phases", "gates", "rate_per_minute", "order_tags",
                               "maintenance_window", "offline_after_seconds"},
                              "rollout"));
  RolloutSpec spec;
  EP_ASSIGN_OR_RETURN(spec.model_id, json::GetString(o, "model"));
  if (spec.model_id.empty() || spec.model_id.size() > 200) {
    return Invalid("invalid_field", "model must be a model id");
  }
  EP_ASSIGN_OR_RETURN(bj::object target, json::GetObject(o, "target"));
  EP_ASSIGN_OR_RETURN(spec.target, TargetFromJson(target));

  EP_ASSIGN_OR_RETURN(bj::array phases, json::GetArray(o, "phases"));
  if (phases.empty() || phases.size() > kMaxPhases) {
    return Invalid("invalid_phases", "phases must hold 1 to " + std::to_string(kMaxPhases) + " phases");
  }
  for (std::size_t i = 0; i < phases.size(); ++i) {
    const std::string where = "phases[" + std::to_string(i) + "]";
    if (!phases[i].is_object()) return Invalid("invalid_phases", where + " must be an object");
    EP_ASSIGN_OR_RETURN(PhaseSpec p, PhaseFromJson(phases[i].as_object(), where));
    if (!spec.phases.empty()) {
      const PhaseSpec& prev = spec.phases.back();
      if ((p.percent && prev.percent && *p.percent < *prev.percent) ||
          (p.count && prev.count && *p.count < *prev.count)) {
        return Invalid("invalid_phases", where + " reaches fewer devices than the phase before: "
                                                 "each phase names its cumulative reach");
      }
    }
    spec.phases.push_back(p);
  }
  if (!spec.phases.back().percent || *spec.phases.back().percent != 100.0) {
    return Invalid("invalid_phases", "the last phase must reach the whole target: percent 100");
  }

  if (json::FindField(o, "gates")) {
    EP_ASSIGN_OR_RETURN(bj::array gates, json::GetArray(o, "gates"));
    if (gates.size() > kMaxGates) {
      return Invalid("invalid_gate", "at most " + std::to_string(kMaxGates) + " gates");
    }
    std::set<GateKind> seen;
    for (std::size_t i = 0; i < gates.size(); ++i) {
      const std::string where = "gates[" + std::to_string(i) + "]";
      if (!gates[i].is_object()) return Invalid("invalid_gate", where + " must be an object");
      EP_ASSIGN_OR_RETURN(GateSpec g, GateFromJson(gates[i].as_object(), where));
      if (!seen.insert(g.kind).second) {
        return Invalid("invalid_gate", where + " repeats gate " + GateName(g.kind));
      }
      spec.gates.push_back(g);
    }
  }
  EP_ASSIGN_OR_RETURN(spec.rate_per_minute, json::GetOptInt(o, "rate_per_minute"));
  if (spec.rate_per_minute && (*spec.rate_per_minute < 1 || *spec.rate_per_minute > 1'000'000)) {
    return Invalid("invalid_field", "rate_per_minute must be in [1, 1000000]");
  }
  if (json::FindField(o, "order_tags")) {
    EP_ASSIGN_OR_RETURN(bj::array tags, json::GetArray(o, "order_tags"));
    if (tags.size() > kMaxOrderTags) {
      return Invalid("invalid_field", "order_tags holds at most " + std::to_string(kMaxOrderTags));
    }
    for (const auto& t : tags) {
      if (!t.is_string() || t.as_string().empty() || t.as_string().size() > 200) {
        return Invalid("invalid_field", "order_tags must hold non-empty strings");
      }
      spec.order_tags.emplace_back(t.as_string());
    }
  }
  if (json::FindField(o, "maintenance_window")) {
    EP_ASSIGN_OR_RETURN(bj::object w, json::GetObject(o, "maintenance_window"));
    EP_ASSIGN_OR_RETURN(spec.window, WindowFromJson(w));
  }
  EP_ASSIGN_OR_RETURN(std::int64_t offline_s,
                      IntIn(o, "offline_after_seconds", 300, 10, 7 * 24 * 3600, "rollout"));
  spec.offline_after_ms = offline_s * 1000;
  return spec;
}

bj::object ToJson(const RolloutSpec& spec) {
  bj::object target = ToJson(spec.target.selector);
  target["dynamic"] = spec.target.dynamic;
  if (spec.target.cap) target["cap"] = *spec.target.cap;
  bj::array phases, gates, order;
  for (const auto& p : spec.phases) {
    bj::object o{{"min_devices", p.min_devices},
                 {"bake_seconds", p.bake_ms / 1000},
                 {"requires_approval", p.requires_approval}};
    if (p.percent) o["percent"] = *p.percent;
    if (p.count) o["count"] = *p.count;
    phases.push_back(std::move(o));
  }
  for (const auto& g : spec.gates) {
    gates.push_back(bj::object{{"gate", GateName(g.kind)},
                               {"threshold", g.threshold},
                               {"min_samples", g.min_samples},
                               {"action", ActionName(g.action)}});
  }
  for (const auto& t : spec.order_tags) order.emplace_back(t);
  bj::object o{{"model", spec.model_id},           {"target", std::move(target)},
               {"phases", std::move(phases)},      {"gates", std::move(gates)},
               {"order_tags", std::move(order)},
               {"offline_after_seconds", spec.offline_after_ms / 1000}};
  if (spec.rate_per_minute) o["rate_per_minute"] = *spec.rate_per_minute;
  if (spec.window) {
    o["maintenance_window"] = bj::object{{"cron", spec.window->cron},
                                         {"duration_minutes", spec.window->duration_minutes},
                                         {"utc_offset", spec.window->utc_offset}};
  }
  return o;
}

std::int64_t PhaseReach(const PhaseSpec& phase, std::int64_t total) {
  std::int64_t reach = 0;
  if (phase.count) {
    reach = *phase.count;
  } else if (phase.percent) {
    reach = static_cast<std::int64_t>(std::ceil(*phase.percent * static_cast<double>(total) / 100.0 - 1e-9));
  }
  reach = std::max(reach, phase.min_devices);
  return std::clamp<std::int64_t>(reach, 0, total);
}

}  // namespace edgeprune::deploy
