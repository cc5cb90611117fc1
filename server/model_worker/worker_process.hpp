#pragma once
// One run of a child process speaking the worker protocol: spawned with posix_spawn (a clean
// environment, default signal dispositions, its own process group, no descriptor but stdin,
// stdout and stderr), fed a request on stdin, read line by line on stdout (events) and stderr
// (logged) until it exits, SIGKILLed at the deadline or when the event handler says stop.
//
// Thread-safety: RunProcess is reentrant; each call owns its process and pipes.

#include <boost/json/object.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::model_worker {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  std::vector<std::string> env;   // "NAME=value", the whole environment
  std::string input;              // written to stdin, then stdin is closed
  std::chrono::steady_clock::time_point deadline;
  // Called for every event line; an error stops the process (SIGKILL) and is returned.
  std::function<Status(const boost::json::object& event)> on_event;
  std::string log_name;  // names the process in the server's log
};

struct ProcessEnd {
  int wait_status = 0;     // from waitpid
  bool timed_out = false;  // killed at the deadline
  std::optional<Error> stopped;  // killed because on_event returned this
  bool bad_output = false;       // an event line was not JSON or too long (killed)
};

// Fails only when the process cannot be started.
Result<ProcessEnd> RunProcess(const ProcessSpec& spec);

}  // namespace edgeprune::model_worker
