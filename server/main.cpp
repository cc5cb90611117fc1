#include "server/app/commands.hpp"

int main(int argc, char** argv) { return edgeprune::server::Dispatch(argc, argv); }
