// devices, enroll-tokens, tokens, audit, telemetry: the fleet half of the operator API
// (server/api/operator_routes.cpp, telemetry_routes.cpp).
#include <memory>

#include "cli/command.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "edgeprune/common/json.hpp"

namespace edgeprune::ctl {
namespace {

namespace bj = boost::json;

// "?a=1&b=x" from the pairs whose value is not empty.
std::string Query(std::initializer_list<std::pair<const char*, std::string>> params) {
  std::string q;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    q += (q.empty() ? "?" : "&") + std::string(k) + "=" + UrlEncode(v);
  }
  return q;
}

std::string LimitText(int limit) { return limit > 0 ? std::to_string(limit) : ""; }

std::string NextPage(const bj::value& list) {
  const std::string next = Field(list, "next_cursor");
  return next == "-" ? "" : "more: --cursor " + next + "\n";
}

std::string DeviceTable(const bj::value& list) {
  Table t({"id", "hostname", "liveness", "tags", "installed", "last seen", "budget params"});
  for (const auto& d : Items(list)) {
    const auto* budget = d.as_object().if_contains("budget");
    t.Row({Field(d, "id"), Field(d, "hostname"), Field(d, "liveness"), Field(d, "tags"),
           Field(d, "installed_variant"), TimeMs(Number(d, "last_seen_ms")),
           budget ? Bytes(Number(*budget, "max_param_bytes")) : "-"});
  }
  return t.Render() + NextPage(list);
}

std::string DeviceDetail(const bj::value& d) {
  std::string out = Describe(d, {"id", "hostname", "status", "liveness", "tags", "caps", "budget",
                                 "agent_state", "installed_variant", "agent_rss_bytes",
                                 "certificate_not_after"});
  out += "enrolled:  " + TimeMs(Number(d, "enrolled_at_ms")) + " UTC\n";
  out += "last seen: " + TimeMs(Number(d, "last_seen_ms")) + " UTC\n";
  return out;
}

void AddDevices(CLI::App& app, Chosen& chosen) {
  auto* noun = app.add_subcommand("devices", "enrolled gateways")->require_subcommand(1);
  struct Ls { std::string status, tag, cursor; int limit = 0; };
  auto ls = std::make_shared<Ls>();
  auto* v = AddVerb(noun, "ls", "list devices", chosen, Needs::kToken, [ls](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/devices" + Query({{"status", ls->status},
                                                                       {"tag", ls->tag},
                                                                       {"limit", LimitText(ls->limit)},
                                                                       {"cursor", ls->cursor}})));
    Print(s, r, DeviceTable);
    return Ok();
  });
  v->add_option("--status", ls->status, "online, offline, never_seen, active or revoked");
  v->add_option("--tag", ls->tag, "only devices carrying this tag");
  v->add_option("--limit", ls->limit, "devices per page (server default 50, at most 500)");
  v->add_option("--cursor", ls->cursor, "the next page, as the previous one printed");

  auto id = std::make_shared<std::string>();
  v = AddVerb(noun, "show", "one device with its profile and budget", chosen, Needs::kToken,
              [id](Session& s) -> Status {
                EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/devices/" + UrlEncode(*id)));
                Print(s, r, DeviceDetail);
                return Ok();
              });
  v->add_option("device", *id, "device id (dev-...)")->required();

  struct Tag { std::string id; std::vector<std::string> tags; bool none = false; };
  auto tag = std::make_shared<Tag>();
  v = AddVerb(noun, "tag", "replace a device's tags", chosen, Needs::kToken, [tag](Session& s) -> Status {
    if (tag->tags.empty() && !tag->none) return UsageError("give the tags, or --none to clear them");
    bj::array tags;
    for (const auto& t : tag->tags) tags.emplace_back(t);
    EP_ASSIGN_OR_RETURN(auto r, s.api->Call("PATCH", "/api/v1/devices/" + UrlEncode(tag->id),
                                            bj::serialize(bj::object{{"tags", std::move(tags)}})));
    Print(s, r, DeviceDetail);
    return Ok();
  });
  v->add_option("device", tag->id, "device id")->required();
  v->add_option("tags", tag->tags, "the device's new tags (all of them)");
  v->add_flag("--none", tag->none, "remove every tag");

  struct Caps { std::string id; double slo = 0; std::int64_t reserve = 0, max_model = 0; bool clear = false; };
  auto caps = std::make_shared<Caps>();
  v = AddVerb(noun, "caps", "replace a device's operator caps (its budget follows)", chosen,
              Needs::kToken, [caps](Session& s) -> Status {
                bj::object c;
                if (caps->slo > 0) c["latency_slo_ms"] = caps->slo;
                if (caps->reserve > 0) c["memory_reserve_bytes"] = caps->reserve;
                if (caps->max_model > 0) c["max_model_bytes"] = caps->max_model;
                if (c.empty() && !caps->clear) {
                  return UsageError("give --latency-slo-ms, --memory-reserve-bytes, --max-model-bytes or --clear");
                }
                EP_ASSIGN_OR_RETURN(auto r, s.api->Call("PATCH", "/api/v1/devices/" + UrlEncode(caps->id),
                                                        bj::serialize(bj::object{{"caps", c}})));
                Print(s, r, DeviceDetail);
                return Ok();
              });
  v->add_option("device", caps->id, "device id")->required();
  v->add_option("--latency-slo-ms", caps->slo, "latency SLO in milliseconds");
  v->add_option("--memory-reserve-bytes", caps->reserve, "memory kept free for other programs");
  v->add_option("--max-model-bytes", caps->max_model, "largest model file the device takes");
  v->add_flag("--clear", caps->clear, "remove every operator cap");

  auto rid = std::make_shared<std::string>();
  v = AddVerb(noun, "revoke", "revoke a device (its certificate stops working)", chosen, Needs::kToken,
              [rid](Session& s) -> Status {
                EP_ASSIGN_OR_RETURN(auto r, s.api->Call("POST", "/api/v1/devices/" + UrlEncode(*rid) + "/revoke"));
                Print(s, r, [](const bj::value& d) { return "revoked " + Field(d, "id"); });
                return Ok();
              });
  v->add_option("device", *rid, "device id")->required();
}

void AddEnrollTokens(CLI::App& app, Chosen& chosen) {
  auto* noun = app.add_subcommand("enroll-tokens", "tokens that let gateways enroll")->require_subcommand(1);
  struct Create { std::int64_t ttl = 0, max_uses = 0; std::vector<std::string> tags; std::string note; };
  auto c = std::make_shared<Create>();
  auto* v = AddVerb(noun, "create", "create one (its secret is shown once)", chosen, Needs::kToken,
                    [c](Session& s) -> Status {
                      bj::object body;
                      if (c->ttl > 0) body["ttl_s"] = c->ttl;
                      if (c->max_uses > 0) body["max_uses"] = c->max_uses;
                      if (!c->tags.empty()) {
                        bj::array tags;
                        for (const auto& t : c->tags) tags.emplace_back(t);
                        body["tags"] = std::move(tags);
                      }
                      if (!c->note.empty()) body["note"] = c->note;
                      EP_ASSIGN_OR_RETURN(auto r, s.api->Call("POST", "/api/v1/enrollment-tokens", bj::serialize(body)));
                      Print(s, r, [](const bj::value& t) {
                        return "enrollment token " + Field(t, "id") + " (shown once; give it to edgeprune-agent enroll --token):\n" +
                               Field(t, "token");
                      });
                      return Ok();
                    });
  v->add_option("--ttl", c->ttl, "seconds it stays valid");
  v->add_option("--max-uses", c->max_uses, "enrollments it allows");
  v->add_option("--tag", c->tags, "tag every device enrolled with it (repeatable)");
  v->add_option("--note", c->note, "what it is for");

  AddVerb(noun, "ls", "list them (never their secrets)", chosen, Needs::kToken, [](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/enrollment-tokens"));
    Print(s, r, [](const bj::value& list) {
      Table t({"id", "uses", "max uses", "expires", "revoked", "tags", "note"});
      for (const auto& x : Items(list)) {
        t.Row({Field(x, "id"), Field(x, "uses"), Field(x, "max_uses"), TimeMs(Number(x, "expires_at_ms")),
               TimeMs(Number(x, "revoked_at_ms")), Field(x, "tags"), Field(x, "note")});
      }
      return t.Render();
    });
    return Ok();
  });

  auto id = std::make_shared<std::string>();
  v = AddVerb(noun, "revoke", "revoke one", chosen, Needs::kToken, [id](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Call("DELETE", "/api/v1/enrollment-tokens/" + UrlEncode(*id)));
    Print(s, r, [](const bj::value& x) { return "revoked enrollment token " + Field(x, "id"); });
    return Ok();
  });
  v->add_option("id", *id, "enrollment token id")->required();
}

void AddTokens(CLI::App& app, Chosen& chosen) {
  auto* noun = app.add_subcommand("tokens", "operators' API tokens (admin)")->require_subcommand(1);
  struct Create { std::string name, role; };
  auto c = std::make_shared<Create>();
  auto* v = AddVerb(noun, "create", "create one (its secret is shown once)", chosen, Needs::kToken,
                    [c](Session& s) -> Status {
                      EP_ASSIGN_OR_RETURN(auto r, s.api->Call("POST", "/api/v1/tokens",
                                                              bj::serialize(bj::object{{"name", c->name}, {"role", c->role}})));
                      Print(s, r, [](const bj::value& t) {
                        return "token " + Field(t, "name") + " (" + Field(t, "role") +
                               ", shown once; store it with edgeprune login):\n" + Field(t, "token");
                      });
                      return Ok();
                    });
  v->add_option("--name", c->name, "a unique name")->required();
  v->add_option("--role", c->role, "viewer, operator or admin")->required()
      ->check(CLI::IsMember({"viewer", "operator", "admin"}));

  AddVerb(noun, "ls", "list them", chosen, Needs::kToken, [](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/tokens"));
    Print(s, r, [](const bj::value& list) {
      Table t({"name", "role", "created", "revoked"});
      for (const auto& x : Items(list)) {
        t.Row({Field(x, "name"), Field(x, "role"), TimeMs(Number(x, "created_at_ms")),
               TimeMs(Number(x, "revoked_at_ms"))});
      }
      return t.Render();
    });
    return Ok();
  });

  auto name = std::make_shared<std::string>();
  v = AddVerb(noun, "revoke", "revoke one", chosen, Needs::kToken, [name](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Call("DELETE", "/api/v1/tokens/" + UrlEncode(*name)));
    Print(s, r, [](const bj::value& x) { return "revoked token " + Field(x, "name"); });
    return Ok();
  });
  v->add_option("name", *name, "token name")->required();
}

void AddAuditAndTelemetry(CLI::App& app, Chosen& chosen) {
  struct Audit { std::string actor, action, target, cursor; int limit = 0; };
  auto a = std::make_shared<Audit>();
  auto* v = AddVerb(&app, "audit", "the audit log, newest first", chosen, Needs::kToken, [a](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/audit" + Query({{"actor", a->actor}, {"action", a->action},
                                                                     {"target", a->target},
                                                                     {"limit", LimitText(a->limit)},
                                                                     {"cursor", a->cursor}})));
    Print(s, r, [](const bj::value& list) {
      Table t({"id", "time (UTC)", "actor", "action", "target", "outcome", "detail"});
      for (const auto& x : Items(list)) {
        t.Row({Field(x, "id"), TimeMs(Number(x, "at_ms")), Field(x, "actor"), Field(x, "action"),
               Field(x, "target"), Field(x, "outcome"), Field(x, "detail").substr(0, 80)});
      }
      return t.Render() + NextPage(list);
    });
    return Ok();
  });
  v->add_option("--actor", a->actor, "e.g. token:alice, device:dev-..., system");
  v->add_option("--action", a->action, "e.g. device.revoke, rollout.pause");
  v->add_option("--target", a->target, "e.g. a device, model or rollout id");
  v->add_option("--limit", a->limit, "entries (server default 100, at most 1000)");
  v->add_option("--cursor", a->cursor, "the next page, as the previous one printed");

  struct Telemetry { std::string device, cursor; int limit = 0; };
  auto t = std::make_shared<Telemetry>();
  v = AddVerb(&app, "telemetry", "a device's telemetry reports, newest first", chosen, Needs::kToken,
              [t](Session& s) -> Status {
                EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/devices/" + UrlEncode(t->device) + "/telemetry" +
                                                       Query({{"limit", LimitText(t->limit)},
                                                              {"cursor", t->cursor}})));
                Print(s, r, [](const bj::value& v) {
                  std::string out = "device " + Field(v, "device_id") + ": " + Field(v, "total_reports") +
                                    " reports, assigned " + Field(v, "assigned_variant") + "\n";
                  Table tab({"seq", "time (UTC)", "variant", "probe acc", "p95 ms", "live p95 ms", "feedback acc", "inferences"});
                  {
                    for (const auto& x : Items(v)) {
                      const auto* probe = x.is_object() ? x.as_object().if_contains("probe_latency") : nullptr;
                      const auto* live = x.is_object() ? x.as_object().if_contains("live_latency") : nullptr;
                      tab.Row({Field(x, "seq"), TimeMs(Number(x, "timestamp_ms")), Field(x, "variant_id"),
                               Fixed(Number(x, "probe_accuracy"), 4), probe ? Fixed(Number(*probe, "p95_ms"), 2) : "-",
                               live ? Fixed(Number(*live, "p95_ms"), 2) : "-", Fixed(Number(x, "feedback_accuracy"), 4),
                               Field(x, "inference_count")});
                    }
                  }
                  return out + tab.Render() + NextPage(v);
                });
                return Ok();
              });
  v->add_option("device", t->device, "device id")->required();
  v->add_option("--limit", t->limit, "reports (server default 100, at most 1000)");
  v->add_option("--cursor", t->cursor, "older reports, as the previous page printed");
}

}  // namespace

void AddFleetCommands(CLI::App& app, Chosen& chosen) {
  AddDevices(app, chosen);
  AddEnrollTokens(app, chosen);
  AddTokens(app, chosen);
  AddAuditAndTelemetry(app, chosen);
}

}  // namespace edgeprune::ctl
