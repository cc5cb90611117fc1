#pragma once
// The agent's persistent state directory. It survives restarts, so a restarted agent resumes
// with its identity instead of enrolling again. Layout (docs/operations.md):
//   identity/device.key   EC P-256 private key, mode 0600, never leaves the device
//   identity/device.crt   current client certificate from the device CA
//   identity/server-ca.pem  the CA that signs the server's TLS certificate
//   identity/identity.json  {device_id, server_url, enrolled_at, not_before, not_after}
//   state.json            {state, updated_at}: last state machine state, for diagnostics/resume
//   variants/             installed model variants (written by the install step)
// Every file is written atomically (temp + fsync + rename).
//
// Thread-safety: one StateDir per agent process; methods are not safe to call concurrently.

#include <cstdint>
#include <optional>
#include <string>

#include "edgeprune/common/result.hpp"

namespace edgeprune::agent {

struct Identity {
  std::string device_id;
  std::string server_url;
  std::string key_pem;
  std::string certificate_pem;
  std::string server_ca_pem;
  std::int64_t enrolled_at = 0;  // unix seconds
  std::int64_t not_before = 0;   // of the current certificate
  std::int64_t not_after = 0;
};

struct PersistedState {
  std::string state;  // state machine state name
  std::int64_t updated_at = 0;
};

class StateDir {
 public:
  // Creates the directory tree (mode 0700) when missing. Errors name the path.
  static Result<StateDir> Open(const std::string& root);

  const std::string& root() const { return root_; }
  std::string identity_dir() const { return root_ + "/identity"; }
  std::string key_path() const { return identity_dir() + "/device.key"; }
  std::string certificate_path() const { return identity_dir() + "/device.crt"; }
  std::string server_ca_path() const { return identity_dir() + "/server-ca.pem"; }
  std::string variants_dir() const { return root_ + "/variants"; }

  bool HasIdentity() const;
  // "identity_missing" (kNotFound) when not enrolled; "identity_corrupt" naming the file otherwise.
  Result<Identity> LoadIdentity() const;
  // Writes key (0600), certificate, CA and identity.json; identity.json last, so a crash midway
  // leaves no half identity that HasIdentity() would accept.
  Status SaveIdentity(const Identity& identity) const;
  // After renewal: replaces the certificate and its validity, keeps the key.
  Status SaveCertificate(const std::string& certificate_pem, std::int64_t not_before,
                         std::int64_t not_after) const;

  Result<std::optional<PersistedState>> LoadState() const;
  Status SaveState(const PersistedState& state) const;

 private:
  explicit StateDir(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace edgeprune::agent
