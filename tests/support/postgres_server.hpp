#pragma once
// A real PostgreSQL server for tests: initdb + pg_ctl in a private temp dir, listening only on a
// Unix socket in that dir (listen_addresses=''), trust authentication for the socket, stopped
// (pg_ctl stop, then SIGKILL to the postmaster's pid if that fails) and removed on destruction,
// or by a watchdog process when the test binary dies without running destructors.
//
// PostgreSQL refuses to run as root. Run as root (CI may), the server runs as the unprivileged
// user `nobody` (runuser), with the temp dir handed to it; otherwise as the calling user.
// The binaries come from `pg_config --bindir`, else /usr/lib/postgresql/15/bin.
//
// PostgresServer::Shared() is the one server of a test binary, started on first use and
// stopped by a GoogleTest global environment (store_backends.hpp) when the binary ends; tests
// get a fresh database each (CREATE DATABASE / DROP DATABASE), which takes milliseconds.
//
// Thread-safety: Shared() may be called from any thread; a PostgresServer is otherwise
// immutable after Start.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace edgeprune::testing {

class TempDir;

class PostgresServer {
 public:
  // Starts a server; on failure ok() is false and error() says why (with initdb's or the
  // server's log). Tests run it without fsync (a test database need not survive a crash);
  // durable = true keeps PostgreSQL's defaults (fsync, full_page_writes), for benchmarks that
  // claim a commit is on disk before its answer.
  explicit PostgresServer(bool durable = false);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // The directory holding the server's socket.
  const std::string& socket_dir() const { return socket_dir_; }
  // A libpq URI for `dbname` on this server, as store.url takes it.
  std::string Url(const std::string& dbname) const;
  // Whether the server process is the unprivileged user (the caller was root).
  bool dropped_privileges() const { return run_as_.size() > 0; }

  // Stops the server now (also done by the destructor).
  void Stop();

  // The binary's shared server, started on the first call.
  static PostgresServer& Shared();
  // Stops the shared server, if one was started.
  static void StopShared();

 private:
  // Runs one PostgreSQL tool (as run_as_ when set) and waits; returns its exit status, with
  // its output in `output`.
  int Run(const std::string& tool, const std::vector<std::string>& args, std::string* output);
  // Stops the server when this process ends without running the destructor.
  void StartWatchdog();

  std::unique_ptr<TempDir> dir_;
  std::string bindir_;
  std::string data_dir_;
  std::string socket_dir_;
  std::string run_as_;  // "nobody" when started by root
  std::string error_;
  bool running_ = false;
  int watchdog_fd_ = -1;  // the write end of the watchdog's pipe
};

}  // namespace edgeprune::testing
