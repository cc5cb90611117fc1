#include "agent/download/keyring.hpp"

#include <filesystem>
#include <system_error>

#include "edgeprune/common/crypto.hpp"

namespace edgeprune::agent {

Result<TrustedKeyring> TrustedKeyring::LoadDir(const std::string& dir) {
  namespace sfs = std::filesystem;
  std::error_code ec;
  sfs::directory_iterator it(dir, ec);
  if (ec) {
    return MakeError(ErrorKind::kIo, "keyring_unreadable",
                     "trusted key directory " + dir + ": " + ec.message());
  }
  TrustedKeyring ring;
  std::vector<std::string> paths;
  for (const auto& entry : it) {
    const auto ext = entry.path().extension().string();
    if (entry.is_regular_file(ec) && (ext == ".pem" || ext == ".pub")) {
      paths.push_back(entry.path().string());
    }
  }
  for (const auto& path : paths) {
    EP_ASSIGN_OR_RETURN(auto pem, crypto::LoadEd25519PublicPem(path));
    auto id = ring.Add(pem);
    if (!id.ok()) return id.error().WithContext(path);
  }
  return ring;
}

Result<std::string> TrustedKeyring::Add(const std::string& public_pem) {
  EP_ASSIGN_OR_RETURN(auto id, crypto::Ed25519KeyId(public_pem));
  keys_[id] = public_pem;
  return id;
}

std::optional<std::string> TrustedKeyring::Find(const std::string& key_id) const {
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> TrustedKeyring::key_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, pem] : keys_) ids.push_back(id);
  return ids;
}

}  // namespace edgeprune::agent
