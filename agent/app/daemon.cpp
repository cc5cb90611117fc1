#include "agent/app/daemon.hpp"

#include <csignal>
#include <cstdio>
#include <ctime>
#include <random>
#include <thread>

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

int RunDaemon(const AgentSettings& settings) {
  auto log = log::Get("agent");
  // Signals are taken by a waiter thread so the machine can be stopped cleanly.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto dir = StateDir::Open(settings.state_dir);
  if (!dir.ok()) return Fail(dir.error());
  AgentContext ctx(settings, std::move(dir).value());
  StateId start = StateId::kEnroll;
  if (ctx.dir.HasIdentity()) {
    auto id = ctx.dir.LoadIdentity();
    if (!id.ok()) return Fail(id.error());
    ctx.identity = std::move(id).value();
    start = StateId::kProfile;  // hardware may have changed while we were down
    log->info("resuming as {} (enrolled {})", ctx.identity->device_id, ctx.identity->enrolled_at);
  }

  auto stop = std::make_shared<StopSignal>();
  Machine machine(Backoff(settings.backoff_base, settings.backoff_cap, std::random_device{}()), stop);
  machine.Register(StateId::kEnroll, MakeEnrollState(ctx));
  machine.Register(StateId::kProfile, MakeProfileState(ctx));
  machine.Register(StateId::kPoll, MakePollState(ctx));
  machine.Register(StateId::kRenew, MakeRenewState(ctx));
  machine.OnTransition([&](StateId, StateId to, Event why) {
    ctx.current = to;
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
  log->info("stopped");
  return 0;
}

}  // namespace edgeprune::agent
