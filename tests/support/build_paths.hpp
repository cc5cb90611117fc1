#pragma once
// Where the tests find the repository and the binaries they run. The values live in one
// generated source file (<build>/tests/build_paths.cpp, written by tests/CMakeLists.txt), not in
// compile definitions: an absolute path in a definition changes the command line of every test
// file, so ccache could not reuse a single object between two clones or worktrees.

#include <string>

namespace edgeprune::testing {

const std::string& SourceDir();         // the repository's root
const std::string& ServerBin();         // edgeprune-server
const std::string& AgentBin();          // edgeprune-agent
const std::string& AgentTorchModule();  // edgeprune_agent_torch.so, the agent's LibTorch module
const std::string& CliBin();            // edgeprune, the operator CLI

}  // namespace edgeprune::testing
