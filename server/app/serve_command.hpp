#pragma once
// `edgeprune-server serve [--config file.toml] [--set key=value]...`: runs the server.
// `edgeprune-server worker [--config file.toml] [--set key=value]...`: runs build workers only.
// `edgeprune-server config [--config ...] [--set ...]`: prints the schema as a markdown table,
// or with --check validates a configuration and prints where each value came from.

namespace edgeprune::server {

int RunServe(int argc, char** argv);
int RunWorker(int argc, char** argv);
int RunConfig(int argc, char** argv);

}  // namespace edgeprune::server
