#pragma once
// The agent's trusted manifest-signing keys: Ed25519 public keys by key id. Loaded from a
// directory of PEM files (one key per *.pem / *.pub file), so a new key can be added before the
// server starts signing with it and an old one removed after: keys rotate without a new agent.
//
// Thread-safety: immutable after loading; Find() may be called from any thread.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "edgeprune/common/result.hpp"

namespace edgeprune::agent {

class TrustedKeyring {
 public:
  TrustedKeyring() = default;

  // Every *.pem and *.pub file in dir. A file that is not an Ed25519 public key fails the whole
  // load naming the file ("invalid_key"); a missing directory is "keyring_unreadable" (kIo).
  static Result<TrustedKeyring> LoadDir(const std::string& dir);

  // Adds one PEM; returns its key id.
  Result<std::string> Add(const std::string& public_pem);

  // The PEM for a key id, or nullopt when the key is not trusted.
  std::optional<std::string> Find(const std::string& key_id) const;
  std::vector<std::string> key_ids() const;
  bool empty() const { return keys_.empty(); }

 private:
  std::map<std::string, std::string> keys_;  // key id → public PEM
};

}  // namespace edgeprune::agent
