#pragma once
// The edgeprune-agent command line: `edgeprune-agent <command> [flags]`.
// Each command lives with the code it drives and registers here in commands.cpp.

namespace edgeprune::agent {

// Runs the command named by argv[1] ("run" when none is given). Returns the exit code.
int Dispatch(int argc, char** argv);

}  // namespace edgeprune::agent
