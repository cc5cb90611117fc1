// jobs ls|show|cancel|watch (server/api/deploy_routes.cpp). `watch` redraws every build's phase and
// percent until each has finished.
#include <memory>

#include "cli/command.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"

namespace edgeprune::ctl {
namespace {

namespace bj = boost::json;

bool Finished(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

std::string Bar(double percent) {
  const int filled = static_cast<int>(std::max(0.0, std::min(100.0, percent)) / 5);
  return "[" + std::string(filled, '#') + std::string(20 - filled, '.') + "]";
}

std::string Target(const bj::value& job) {
  const auto& payload = Member(job, "payload");
  const std::string variant = Field(payload, "variant_id");
  return variant != "-" ? variant : Field(job, "kind");
}

std::string JobTable(const std::vector<bj::value>& jobs, bool bars) {
  Table t = bars ? Table({"job", "for", "state", "phase", "percent", "attempt", "progress"})
                 : Table({"job", "for", "state", "phase", "percent", "attempt", "error"});
  for (const auto& j : jobs) {
    const std::string attempt = Field(j, "attempts") + "/" + Field(j, "max_attempts");
    t.Row({Field(j, "id"), Target(j), Field(j, "state"), Field(j, "phase"),
           Fixed(Number(j, "percent"), 0) + "%", attempt,
           bars ? Bar(Number(j, "percent", 0)) : Field(j, "error").substr(0, 60)});
  }
  return t.Render();
}

std::string JobDetail(const bj::value& j) {
  // Which process runs the job and until when it holds it: with several server and worker
  // processes on one database, where a build runs and when another would take it back.
  const std::string owner = Field(j, "lease_owner");
  const std::string lease = owner.empty() || owner == "-"
                                ? "-"
                                : owner + " until " + TimeMs(Number(j, "lease_expires_at")) + " UTC";
  return Describe(j, {"id", "kind", "state", "phase", "percent", "attempts", "max_attempts",
                      "cancel_requested", "error", "payload", "result"}) +
         "created:          " + TimeMs(Number(j, "created_at")) + " UTC\n" +
         "finished:         " + TimeMs(Number(j, "finished_at")) + " UTC\n" +
         "lease:            " + lease + "\n";
}

// A watch waits for a state; an answer without one would keep it waiting forever.
Error NoState(const std::string& what) {
  return MakeError(ErrorKind::kIo, "invalid_response", "the server's answer for " + what + " has no state");
}

struct Watch {
  std::vector<std::string> ids;
  double interval = 1.0;
};

Status WatchJobs(Session& s, const Watch& w) {
  std::vector<std::string> ids = w.ids;
  if (ids.empty()) {  // every job unfinished now
    EP_ASSIGN_OR_RETURN(auto list, s.api->Get("/api/v1/jobs"));
    for (const auto& j : Items(list.json)) {
      if (!Finished(Field(j, "state"))) ids.push_back(Field(j, "id"));
    }
    if (ids.empty()) {
      if (!s.json()) PrintOut("no unfinished jobs");
      return Ok();
    }
  }
  LiveView view;
  for (;;) {
    std::vector<bj::value> jobs;
    std::vector<std::string> raws;
    std::map<std::string, int> states;
    for (const auto& id : ids) {
      EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/jobs/" + UrlEncode(id)));
      if (Field(r.json, "state") == "-") return NoState("job " + id);
      ++states[Field(r.json, "state")];
      jobs.push_back(std::move(r.json));
      raws.push_back(std::move(r.raw));
    }
    const bool done = std::all_of(jobs.begin(), jobs.end(),
                                  [](const bj::value& j) { return Finished(Field(j, "state")); });
    if (!s.json()) {
      std::string summary;
      for (const auto& [state, n] : states) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + state;
      std::vector<std::string> lines;
      std::string table = JobTable(jobs, view.tty());
      for (std::size_t at = 0, nl; (nl = table.find('\n', at)) != std::string::npos; at = nl + 1) {
        lines.push_back(table.substr(at, nl - at));
      }
      lines.push_back("builds: " + summary);
      view.Show(lines);
    }
    if (done) {
      if (s.json()) {
        for (const auto& raw : raws) PrintOut(raw);
      }
      const int bad = states["failed"] + states["cancelled"];
      if (bad == 0) return Ok();
      return MakeError(ErrorKind::kFailedPrecondition, "jobs_failed",
                       std::to_string(bad) + " of " + std::to_string(jobs.size()) +
                           " jobs did not succeed (edgeprune jobs show ID)");
    }
    SleepSeconds(w.interval);
  }
}

}  // namespace

void AddJobCommands(CLI::App& app, Chosen& chosen) {
  auto* noun = app.add_subcommand("jobs", "variant builds in the job queue")->require_subcommand(1);
  struct Ls { std::string state, kind; };
  auto ls = std::make_shared<Ls>();
  auto* v = AddVerb(noun, "ls", "list jobs", chosen, Needs::kToken, [ls](Session& s) -> Status {
    std::string q;
    if (!ls->state.empty()) q += "?state=" + UrlEncode(ls->state);
    if (!ls->kind.empty()) q += (q.empty() ? "?kind=" : "&kind=") + UrlEncode(ls->kind);
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/jobs" + q));
    Print(s, r, [](const bj::value& list) {
      std::vector<bj::value> jobs(Items(list).begin(), Items(list).end());
      return JobTable(jobs, false);
    });
    return Ok();
  });
  v->add_option("--state", ls->state, "queued, running, succeeded, failed or cancelled");
  v->add_option("--kind", ls->kind, "e.g. build_variant");

  auto id = std::make_shared<std::string>();
  v = AddVerb(noun, "show", "one job", chosen, Needs::kToken, [id](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Get("/api/v1/jobs/" + UrlEncode(*id)));
    Print(s, r, JobDetail);
    return Ok();
  });
  v->add_option("job", *id, "job id")->required();

  auto cid = std::make_shared<std::string>();
  v = AddVerb(noun, "cancel", "cancel a job (its variant fails)", chosen, Needs::kToken, [cid](Session& s) -> Status {
    EP_ASSIGN_OR_RETURN(auto r, s.api->Call("DELETE", "/api/v1/jobs/" + UrlEncode(*cid)));
    Print(s, r, [](const bj::value& j) {
      return "job " + Field(j, "id") + ": " + Field(j, "state") +
             (Field(j, "state") == "running" ? " (stops at its next progress report)" : "");
    });
    return Ok();
  });
  v->add_option("job", *cid, "job id")->required();

  auto w = std::make_shared<Watch>();
  v = AddVerb(noun, "watch", "redraw builds' phase and percent until they finish", chosen, Needs::kToken,
              [w](Session& s) { return WatchJobs(s, *w); });
  v->add_option("jobs", w->ids, "job ids (default: every unfinished job)");
  v->add_option("--interval", w->interval, "seconds between polls")->check(CLI::Range(0.1, 3600.0));
}

}  // namespace edgeprune::ctl
