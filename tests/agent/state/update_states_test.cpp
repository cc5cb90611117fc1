// The download, verify and install states on the one AgentContext: how a failure goes on is
// decided by the error's Retry, never by its code; abandoning a variant is its own event.
#include "updater_fixture.hpp"

namespace edgeprune::agent {
namespace {

// A desired variant the server no longer offers (404/403 on its manifest): the download state
// does not retry it in place (the desired variant only changes with a heartbeat, which it does
// not send) but abandons it (kAbandoned: back to serve) without a report, and may take it again
// later.
TEST_F(UpdaterTest, VariantNoLongerOfferedSendsTheFlowBackToServing) {
  auto agent = StartAgent();
  std::vector<std::string> reports;
  auto& ctx = agent->ctx;
  agent->Desire("withdrawn");
  ctx.report = [&](const std::string& id, const std::string& event, const std::string&) {
    reports.push_back(id + " " + event);
    return true;
  };
  auto& download = agent->download;
  auto first = download->Run();
  EXPECT_EQ(first.event, Event::kAbandoned);
  EXPECT_EQ(first.detail, "not offered: withdrawn");
  EXPECT_TRUE(reports.empty());
  EXPECT_EQ(ctx.update.refused.count("withdrawn"), 0u);
  EXPECT_EQ(agent->verify->Run().event, Event::kAbandoned);
  EXPECT_EQ(agent->install->Run().detail, "nothing to install");
  // Offered again later: it installs.
  Publish("withdrawn", 1);
  EXPECT_EQ(download->Run().event, Event::kDone);
  EXPECT_EQ(agent->verify->Run().event, Event::kDone);
  EXPECT_EQ(agent->install->Run().event, Event::kDone);
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "withdrawn");
}

// A payload whose bytes differ from the signed manifest: each attempt is refused and reported
// with its reason, retried (kFailed → backoff) from byte 0, and refused for good after
// max_integrity_attempts (kAbandoned); a retry that gets the right bytes installs and clears the
// count.
TEST_F(UpdaterTest, CorruptPayloadIsReportedEveryTimeRetriedAndRefusedForGoodAfterTheLimit) {
  Publish("fixed", 1);
  Publish("flipped", 2);
  auto agent = StartAgent();
  std::vector<std::string> reports;
  auto& ctx = agent->ctx;
  agent->Desire("fixed");
  bool server_reachable = true;
  ctx.report = [&](const std::string& id, const std::string& event, const std::string& reason) {
    if (!server_reachable) return false;
    reports.push_back(id + " " + event + " " + reason);
    return true;
  };
  auto& download = agent->download;
  auto& verify = agent->verify;
  auto& install = agent->install;

  // "fixed" is damaged once, then served right: the retry installs it.
  edgeprune::testing::TestVariant good = server_.Variant("fixed");
  edgeprune::testing::TestVariant bad = good;
  bad.payload[bad.payload.size() / 2] ^= 0x01;
  server_.AddVariant("fixed", bad);
  EXPECT_EQ(download->Run().event, Event::kFailed);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("fixed refused payload_digest_mismatch"), std::string::npos)
      << reports[0];
  EXPECT_NE(reports[0].find("attempt 1 of 3, retrying"), std::string::npos) << reports[0];
  EXPECT_EQ(ctx.update.integrity_failures["fixed"], 1);
  server_.AddVariant("fixed", good);
  EXPECT_EQ(download->Run().event, Event::kDone);
  EXPECT_EQ(verify->Run().event, Event::kDone);
  EXPECT_EQ(install->Run().event, Event::kDone);
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "fixed");
  EXPECT_EQ(ctx.update.integrity_failures.count("fixed"), 0u);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[1], "fixed installed version 1");

  // "flipped" stays damaged: three reported refusals, then refused for good, never installed.
  // The server cannot take the first two reports: they wait and go out, in order, with the third.
  edgeprune::testing::TestVariant flipped = server_.Variant("flipped");
  flipped.payload[0] ^= 0x80;
  server_.AddVariant("flipped", flipped);
  agent->Desire("flipped");
  server_reachable = false;
  EXPECT_EQ(download->Run().event, Event::kFailed);
  EXPECT_EQ(download->Run().event, Event::kFailed);
  EXPECT_EQ(ctx.unsent.size(), 2u);
  EXPECT_EQ(reports.size(), 2u);
  server_reachable = true;
  EXPECT_EQ(download->Run().event, Event::kAbandoned);
  EXPECT_TRUE(ctx.unsent.empty());
  ASSERT_EQ(reports.size(), 5u);
  EXPECT_NE(reports[2].find("attempt 1 of 3"), std::string::npos) << reports[2];
  EXPECT_NE(reports[3].find("attempt 2 of 3"), std::string::npos) << reports[3];
  for (std::size_t i = 2; i < 5; ++i) {
    EXPECT_NE(reports[i].find("flipped refused payload_digest_mismatch"), std::string::npos)
        << reports[i];
  }
  EXPECT_NE(reports[4].find("attempt 3 of 3, refused for good"), std::string::npos) << reports[4];
  EXPECT_EQ(ctx.update.refused.count("flipped"), 1u);
  EXPECT_FALSE(agent->updater.pending().has_value());
  auto again = download->Run();
  EXPECT_EQ(again.event, Event::kAbandoned);
  EXPECT_EQ(again.detail, "nothing to download");
  EXPECT_EQ(reports.size(), 5u) << "a variant refused for good is not fetched again";
  EXPECT_EQ(agent->runtime.active_spec()->variant_id, "fixed");
  EXPECT_EQ(agent->store.InstalledVersion(), 1);
}

// What one failed step did to the agent's state, to compare two runs.
struct Outcome {
  Event event;
  bool refused;
  int integrity_failures;
  std::vector<std::string> reported;  // "variant event"
  bool operator==(const Outcome&) const = default;
};

Outcome FailOnce(const Error& e, const char* refusal_event = "refused") {
  edgeprune::testing::TempDir dir("update-states");
  AgentContext ctx(AgentSettings{}, StateDir::Open(dir.File("state")).value());
  Outcome out{};
  ctx.report = [&](const std::string& id, const std::string& event, const std::string&) {
    out.reported.push_back(id + " " + event);
    return true;
  };
  out.event = UpdateStepFailed(ctx, "var-1", e, refusal_event).event;
  out.refused = ctx.Refused("var-1");
  out.integrity_failures = ctx.update.integrity_failures["var-1"];
  return out;
}

// Renaming an error code changes nothing: the step reads the error's Retry (and, for a permanent
// kNotFound, that the server no longer offers the variant), never its code.
TEST(UpdateStepFailed, FollowsTheErrorsRetryNeverItsCode) {
  for (Retry retry : {Retry::kTransient, Retry::kLimited, Retry::kPermanent}) {
    SCOPED_TRACE(RetryName(retry));
    for (ErrorKind kind : {ErrorKind::kPermissionDenied, ErrorKind::kNotFound}) {
      const Outcome named = FailOnce(MakeError(kind, "bad_signature", "m", retry));
      const Outcome renamed = FailOnce(MakeError(kind, "manifest_signature_invalid", "m", retry));
      EXPECT_EQ(named, renamed);
    }
  }
  // A code that once meant "refuse for good" is retried when its error says it may pass...
  Outcome transient = FailOnce(MakeError(ErrorKind::kPermissionDenied, "bad_signature", "m"));
  EXPECT_EQ(transient.event, Event::kFailed);
  EXPECT_FALSE(transient.refused);
  EXPECT_TRUE(transient.reported.empty());
  // ...and a code never seen before is refused for good when its error says so.
  Outcome permanent = FailOnce(
      PermanentError(ErrorKind::kFailedPrecondition, "some_new_check", "m"), "check_failed");
  EXPECT_EQ(permanent.event, Event::kAbandoned);
  EXPECT_TRUE(permanent.refused);
  EXPECT_EQ(permanent.reported, std::vector<std::string>{"var-1 check_failed"});
  // A limited retry counts attempts, reports each, and is retried until the limit.
  Outcome limited = FailOnce(MakeError(ErrorKind::kIo, "bytes_differ", "m", Retry::kLimited));
  EXPECT_EQ(limited.event, Event::kFailed);
  EXPECT_EQ(limited.integrity_failures, 1);
  EXPECT_EQ(limited.reported, std::vector<std::string>{"var-1 refused"});
  // A permanent kNotFound is a withdrawn assignment: abandoned, not refused, not reported.
  Outcome gone = FailOnce(PermanentError(ErrorKind::kNotFound, "anything", "m"));
  EXPECT_EQ(gone.event, Event::kAbandoned);
  EXPECT_FALSE(gone.refused);
  EXPECT_TRUE(gone.reported.empty());
}

}  // namespace
}  // namespace edgeprune::agent
