#pragma once
// How the CLI's nouns and verbs are declared. Each noun file adds its CLI11 subcommands; a verb's
// callback records the Action to run and what it needs (nothing, a server, a server and a token),
// and main runs it once parsing succeeded, with a Session holding the flags and, when needed, an
// ApiClient. Output goes through Print, so every verb answers -o json with the server's body
// unchanged and a human rendering otherwise.
//
// Thread-safety: single-threaded, like the CLI.

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <functional>
#include <memory>
#include <string>

#include "cli/api_client.hpp"
#include "cli/contexts.hpp"
#include "edgeprune/common/result.hpp"

namespace edgeprune::ctl {

struct Session {
  GlobalFlags flags;
  std::unique_ptr<ApiClient> api;  // set when the action needs the server
  bool json() const { return flags.output == "json"; }
};

using Action = std::function<Status(Session&)>;
enum class Needs { kNothing, kServer, kToken };

struct Chosen {
  Action action;
  Needs needs = Needs::kToken;
};

// Adds `name` under parent; when the command line picks it, `chosen` becomes {action, needs}.
CLI::App* AddVerb(CLI::App* parent, const std::string& name, const std::string& help,
                  Chosen& chosen, Needs needs, Action action);

// -o json: the raw body; else human(json).
void Print(const Session& s, const Reply& r, const std::function<std::string(const boost::json::value&)>& human);

void AddFleetCommands(CLI::App& app, Chosen& chosen);     // devices, enroll-tokens, tokens, audit, telemetry
void AddCatalogCommands(CLI::App& app, Chosen& chosen);   // models, datasets, deploy
void AddRolloutCommands(CLI::App& app, Chosen& chosen);   // rollouts
void AddJobCommands(CLI::App& app, Chosen& chosen);       // jobs
void AddContextCommands(CLI::App& app, Chosen& chosen);   // login, context

}  // namespace edgeprune::ctl
