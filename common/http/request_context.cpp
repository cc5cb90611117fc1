#include "common/http/request_context.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace edgeprune::http {

SpooledBody::~SpooledBody() {
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

std::optional<std::string_view> RequestContext::Header(std::string_view name) const {
  std::string key(name);
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto it = headers.find(key);
  if (it == headers.end()) return std::nullopt;
  return std::string_view(it->second);
}

std::optional<std::string_view> RequestContext::PathParam(std::string_view name) const {
  auto it = path_params.find(std::string(name));
  if (it == path_params.end()) return std::nullopt;
  return std::string_view(it->second);
}

std::optional<std::string_view> RequestContext::QueryParam(std::string_view name) const {
  auto it = query_params.find(std::string(name));
  if (it == query_params.end()) return std::nullopt;
  return std::string_view(it->second);
}

}  // namespace edgeprune::http
