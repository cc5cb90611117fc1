#pragma once
// The edgeprune-server command line: `edgeprune-server <command> [flags]`.
// Each command lives with the code it drives and registers here in commands.cpp.

namespace edgeprune::server {

// Runs the command named by argv[1] ("serve" when none is given). Returns the exit code.
int Dispatch(int argc, char** argv);

}  // namespace edgeprune::server
