#pragma once
// `edgeprune-server token create --role R --name N [--config f] [--set k=v]`: makes an operator
// API token directly in the database (works with the server stopped; prints the secret once).
// `token list` shows names, roles and revocation; `token revoke --name N` revokes.

namespace edgeprune::server {

int RunTokenCommand(int argc, char** argv);

}  // namespace edgeprune::server
