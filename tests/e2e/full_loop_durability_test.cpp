// End-to-end durability: a download cut at half or withdrawn midway, the server and an agent
// killed with SIGKILL while reports are queued. The shared harness is in full_loop_fixture.hpp.

#include <set>

#include "full_loop_fixture.hpp"

namespace edgeprune::e2e {
namespace {

// 5. A download cut at half resumes where it stopped: the agent is SIGKILLed after its first
// chunk (of two) reached the disk; restarted, it asks for the rest only.
TEST_F(FullLoopTest, DownloadCutAtHalfResumes) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  auto v = suite->Variant(suite->model_a, x);
  const std::int64_t size = Int(v, "size_bytes");
  const std::int64_t chunk = (size + 1) / 2;
  ASSERT_GE(chunk, 1024);
  // Two chunks; the rate cap holds the second back ~4 s so the kill lands between them.
  Agent agent({"download.chunk_bytes=" + std::to_string(chunk)});
  agent.Start({"download.max_bytes_per_s=" + std::to_string(chunk / 4)});
  const std::string dev = agent.device_id();
  const std::string partial = agent.state_dir() + "/variants/.partial/" + x + ".v" +
                              std::to_string(Int(v, "version")) + ".part";
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::error_code ec;
        return static_cast<std::int64_t>(std::filesystem::file_size(partial, ec)) == chunk;
      },
      seconds(60), milliseconds(5)))
      << agent.Log();
  agent.Kill();
  std::error_code ec;
  ASSERT_EQ(static_cast<std::int64_t>(std::filesystem::file_size(partial, ec)), chunk)
      << "the kill came after the first chunk and before the second";

  agent.Start();
  ASSERT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  const std::string log = agent.Log();
  EXPECT_NE(log.find("resuming /agent/v1/variants/" + x + "/payload at byte " +
                     std::to_string(chunk) + " of " + std::to_string(size)),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(std::to_string(size - chunk) + " bytes in 1 requests (resumed at " +
                     std::to_string(chunk) + ")"),
            std::string::npos)
      << log;
  EXPECT_EQ(agent.Stop(), 0);
}

// 5a. The payload cannot be fetched for a while (its blob is missing on the server, which
// answers the payload request with an error): the agent retries the download in place with its
// backoff, and its heartbeats keep reaching the server meanwhile, at their interval, reporting
// the download state. Once the payload is back the retry installs it.
TEST_F(FullLoopTest, HeartbeatsGoOnWhileADownloadIsRetriedInPlace) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  const std::string sha = Str(suite->Variant(suite->model_a, x), "sha256");
  ASSERT_EQ(sha.size(), 64u);
  const std::string blob = suite->data_dir + "/blobs/" + sha.substr(0, 2) + "/" + sha.substr(2);
  struct Hidden {
    std::string path;
    ~Hidden() { Restore(); }
    void Restore() {
      std::error_code ec;
      if (std::filesystem::exists(path + ".hidden")) std::filesystem::rename(path + ".hidden", path, ec);
    }
  } hidden{blob};
  std::filesystem::rename(blob, blob + ".hidden");

  // Backoff waits of 2-4 s, longer than the 1 s heartbeat interval.
  Agent agent({"agent.backoff_base_ms=2000", "agent.backoff_cap_ms=4000"});
  agent.Start();
  const std::string dev = agent.device_id();
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(agent.WaitLine("download failed", seconds(60))) << agent.Log();
  // Distinct heartbeats the server saw while the agent was in the download state.
  std::set<std::int64_t> beats;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto d = suite->Call("GET", "/api/v1/devices/" + dev);
        if (Str(d.body, "agent_state") == "download") beats.insert(Int(d.body, "last_seen_ms"));
        return beats.size() >= 4;
      },
      seconds(40), milliseconds(100)))
      << "heartbeats seen during the download retries: " << beats.size() << "\n"
      << agent.Log();
  const std::string log = agent.Log();
  EXPECT_NE(log.find("download failed"), std::string::npos);
  EXPECT_EQ(log.find("serving " + x), std::string::npos) << "nothing to install yet";

  hidden.Restore();
  EXPECT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  EXPECT_EQ(agent.Stop(), 0);
}

// 5a'. A rate-capped download waits between its chunks (about 8 s here): the heartbeats go on
// at their interval meanwhile, and the download then completes.
TEST_F(FullLoopTest, HeartbeatsGoOnWhileARateCappedDownloadWaits) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  auto v = suite->Variant(suite->model_a, x);
  const std::int64_t chunk = (Int(v, "size_bytes") + 1) / 2;
  Agent agent({"download.chunk_bytes=" + std::to_string(chunk),
               "download.max_bytes_per_s=" + std::to_string(chunk / 8)});
  agent.Start();
  const std::string dev = agent.device_id();
  const std::string partial = agent.state_dir() + "/variants/.partial/" + x + ".v" +
                              std::to_string(Int(v, "version")) + ".part";
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::error_code ec;
        return static_cast<std::int64_t>(std::filesystem::file_size(partial, ec)) == chunk;
      },
      seconds(60), milliseconds(5)))
      << agent.Log();
  std::set<std::int64_t> beats;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto d = suite->Call("GET", "/api/v1/devices/" + dev);
        if (Str(d.body, "agent_state") == "download") beats.insert(Int(d.body, "last_seen_ms"));
        return beats.size() >= 3;
      },
      seconds(20), milliseconds(100)))
      << "heartbeats seen while the download waited: " << beats.size() << "\n"
      << agent.Log();
  EXPECT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  EXPECT_EQ(agent.Stop(), 0);
}

// 5b. The assignment changes while a download waits between chunks: the agent stops asking for
// the withdrawn variant, goes back to heartbeating, and when the variant is assigned again it
// resumes the partial file it kept.
TEST_F(FullLoopTest, VariantWithdrawnDuringADownloadIsDroppedAndResumedWhenAssignedAgain) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  auto v = suite->Variant(suite->model_a, x);
  const std::int64_t size = Int(v, "size_bytes");
  const std::int64_t chunk = (size + 1) / 2;
  const std::string model_w = suite->UploadMaster("lenet5-w");
  Agent agent({"download.chunk_bytes=" + std::to_string(chunk),
               "download.max_bytes_per_s=" + std::to_string(chunk / 4)});
  agent.Start();
  const std::string dev = agent.device_id();
  const std::string partial = agent.state_dir() + "/variants/.partial/" + x + ".v" +
                              std::to_string(Int(v, "version")) + ".part";
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::error_code ec;
        return static_cast<std::int64_t>(std::filesystem::file_size(partial, ec)) == chunk;
      },
      seconds(60), milliseconds(5)))
      << agent.Log();
  // While the agent waits before its second chunk, the device moves to model W (still
  // building, so no variant yet): X is no longer the device's to fetch.
  auto deployed_w = suite->Deploy(model_w, dev);
  const std::string job = Str(suite->Variant(model_w, suite->TargetOf(model_w, deployed_w)),
                              "job_id");
  if (!job.empty()) suite->Call("DELETE", "/api/v1/jobs/" + job);
  // The withdrawal is seen either by the next payload request ("no longer offered") or by a
  // heartbeat the agent sends while that request's failure waits for its retry.
  ASSERT_TRUE(agent.WaitLine(": serving nothing", seconds(30))) << agent.Log();
  const std::string withdrawn = agent.Log();
  EXPECT_TRUE(withdrawn.find("variant " + x + " is no longer offered") != std::string::npos ||
              withdrawn.find("download --abandoned--> serve: nothing to download") !=
                  std::string::npos)
      << withdrawn;
  EXPECT_TRUE(suite->Audit("variant.refused", x, dev).empty()) << "a withdrawal is no refusal";

  // Model A again: X is fetched from where the kept partial file stops.
  suite->Deploy(suite->model_a, dev);
  ASSERT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  EXPECT_NE(agent.Log().find("resuming /agent/v1/variants/" + x + "/payload at byte " +
                             std::to_string(chunk) + " of " + std::to_string(size)),
            std::string::npos)
      << agent.Log();
  EXPECT_EQ(agent.Stop(), 0);
}

// 6. The server SIGKILLed and restarted while agents report: every report the agents made is
// stored exactly once.
TEST_F(FullLoopTest, ServerKilledWhileAgentsReportLosesNoReport) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  Agent a, b;
  a.Start();
  b.Start();
  for (Agent* agent : {&a, &b}) {
    suite->Deploy(suite->model_a, agent->device_id());
    ASSERT_TRUE(agent->WaitServing(x, seconds(60))) << agent->Log();
  }
  ASSERT_TRUE(AllReportsArrived(a, seconds(30)));
  ASSERT_TRUE(AllReportsArrived(b, seconds(30)));

  suite->server->Signal(SIGKILL);
  suite->server->Wait(seconds(20));
  // Reports pile up in the agents' queues while the server is gone.
  for (Agent* agent : {&a, &b}) {
    ASSERT_TRUE(WaitUntil([&] { return agent->TelemetryCounts().second >= 3; }, seconds(30),
                          milliseconds(100)))
        << agent->Log();
  }
  suite->StartServer();
  ASSERT_TRUE(suite->server && suite->server->Running());
  EXPECT_TRUE(AllReportsArrived(a, seconds(60))) << a.Log();
  EXPECT_TRUE(AllReportsArrived(b, seconds(60))) << b.Log();
  EXPECT_EQ(a.Stop(), 0);
  EXPECT_EQ(b.Stop(), 0);
}

// 7. An agent SIGKILLed with reports still queued: restarted, it sends them.
TEST_F(FullLoopTest, AgentKilledAndRestartedStillDeliversItsQueuedReports) {
  const std::string x = ReadyX();
  ASSERT_FALSE(x.empty());
  Agent agent;
  agent.Start();
  suite->Deploy(suite->model_a, agent.device_id());
  ASSERT_TRUE(agent.WaitServing(x, seconds(60))) << agent.Log();
  ASSERT_TRUE(AllReportsArrived(agent, seconds(30)));

  // The server goes away so reports stay queued, then the agent dies with them.
  suite->server->Signal(SIGKILL);
  suite->server->Wait(seconds(20));
  std::pair<std::int64_t, std::int64_t> at_kill;
  ASSERT_TRUE(WaitUntil(
      [&] {
        at_kill = agent.TelemetryCounts();
        return at_kill.second >= 3;
      },
      seconds(30), milliseconds(100)))
      << agent.Log();
  agent.Kill();
  suite->StartServer();
  ASSERT_TRUE(suite->server && suite->server->Running());
  const std::int64_t stored_before = suite->TotalReports(agent.device_id());
  EXPECT_LE(stored_before, at_kill.first - at_kill.second);

  agent.Start();
  ASSERT_TRUE(AllReportsArrived(agent, seconds(60))) << agent.Log();
  EXPECT_GE(suite->TotalReports(agent.device_id()), at_kill.first)
      << "every report queued at the kill arrived";
  EXPECT_EQ(agent.Stop(), 0);
}

}  // namespace
}  // namespace edgeprune::e2e
