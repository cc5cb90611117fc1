#include "agent/app/commands.hpp"

int main(int argc, char** argv) { return edgeprune::agent::Dispatch(argc, argv); }
