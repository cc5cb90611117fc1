#include "agent/app/daemon.hpp"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <random>
#include <thread>

#include "agent/local_api/serving_stack.hpp"
#include "agent/state/states.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::agent {
namespace {

int Fail(const Error& e) {
  log::Get("agent")->error("{}", e.ToString());
  std::fprintf(stderr, "edgeprune-agent: %s\n", e.ToString().c_str());
  return 1;
}

}  // namespace

int RunDaemon(const Config& config, const AgentSettings& settings) {
  auto log = log::Get("agent");
  // Signals are taken by a waiter thread so the machine can be stopped cleanly.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto dir = StateDir::Open(settings.state_dir);
  if (!dir.ok()) return Fail(dir.error());
  // The agent's state, owned here for the life of the process; the handlers share it.
  AgentContext ctx(settings, std::move(dir).value());
  StateId start = StateId::kEnroll;
  if (ctx.dir.HasIdentity()) {
    auto id = ctx.dir.LoadIdentity();
    if (!id.ok()) return Fail(id.error());
    ctx.identity = std::move(id).value();
    start = StateId::kProfile;  // hardware may have changed while we were down
    log->info("resuming as {} (enrolled {})", ctx.identity->device_id, ctx.identity->enrolled_at);
  }

  // The serving side: keyring, installed variants, runtime, probe set, telemetry queue, local
  // API. It talks to the server over the same mTLS connection as the heartbeat, fetched per use
  // because enrollment and renewal replace it. A rate-capped download waits between its chunks
  // on the stop signal, heartbeating (ctx.keepalive, set by RegisterStates) meanwhile.
  auto stop = std::make_shared<StopSignal>();
  auto stack = ServingStack::Create(
      config, settings.state_dir,
      [&ctx]() -> Result<http::HttpsClient*> {
        EP_ASSIGN_OR_RETURN(ServerApi * api, ctx.Api());
        return api->client();
      },
      [stop, keepalive = ctx.keepalive](std::chrono::milliseconds d) {
        return WaitWithKeepAlive(*stop, d, *keepalive);
      });
  if (!stack.ok()) return Fail(stack.error());
  if (auto s = (*stack)->Start(); !s.ok()) return Fail(s.error());
  ctx.serving = stack->get();
  ctx.updater = &(*stack)->updater();
  ctx.installed_variant = (*stack)->installed_variant();
  std::printf("local api on %s:%u\n", config.GetString("local_api.host").c_str(),
              static_cast<unsigned>((*stack)->local_api_port()));
  std::fflush(stdout);

  Machine machine(Backoff(settings.backoff_base, settings.backoff_cap, std::random_device{}()), stop);
  RegisterStates(machine, ctx);
  machine.OnTransition([&](StateId, StateId to, Event why) {
    ctx.current = to;
    if (to == StateId::kServe) {
      ctx.installed_variant = (*stack)->installed_variant();
      std::printf("agent %s: serving %s\n", ctx.identity ? ctx.identity->device_id.c_str() : "?",
                  ctx.installed_variant.value_or("nothing").c_str());
      std::fflush(stdout);
    }
    if (why == Event::kIdentityRejected) ctx.identity_rejected = true;
    if (to == StateId::kPoll && ctx.identity) {
      // One line tests and operators can wait for.
      std::printf("agent %s: polling\n", ctx.identity->device_id.c_str());
      std::fflush(stdout);
    }
    if (auto s = ctx.dir.SaveState({StateName(to), std::time(nullptr)}); !s.ok()) {
      log->warn("saving state: {}", s.error().ToString());
    }
  });
  ctx.current = start;

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    log->info("signal {}: stopping", sig);
    stop->Stop();
  });
  machine.Run(start);
  // Wake the waiter if the machine ended on its own.
  if (!stop->stopped()) stop->Stop();
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  (*stack)->Stop();
  log->info("stopped");
  return 0;
}

}  // namespace edgeprune::agent
