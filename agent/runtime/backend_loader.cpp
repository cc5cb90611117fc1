#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <map>
#include <mutex>
#include <string>

#include "agent/runtime/backend.hpp"

namespace edgeprune::agent {

std::string DefaultBackendPath() {
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return kBackendModuleName;  // the dynamic loader's search path, then
  std::string dir(exe, static_cast<std::size_t>(n));
  dir.resize(dir.rfind('/') + 1);
  return dir + kBackendModuleName;
}

Result<RuntimeBackend*> LoadRuntimeBackend(const std::string& requested) {
  static std::mutex mu;
  static std::map<std::string, RuntimeBackend*> loaded;
  const std::string path = requested.empty() ? DefaultBackendPath() : requested;
  std::lock_guard lock(mu);
  if (auto it = loaded.find(path); it != loaded.end()) return it->second;
  // Permanent: the module is a file of this installation, which a retry does not change (and a
  // variant refused for it is retried once the agent restarts, e.g. after a fixed install).
  auto unavailable = [&](const std::string& why) {
    return PermanentError(ErrorKind::kUnavailable, "runtime_unavailable",
                          "the LibTorch runtime module " + path + " " + why);
  };
  // RTLD_LOCAL: the module's symbols (and its private copies of our static libraries) stay out
  // of the global namespace. Never dlclose'd: models and the backend hold its code.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* e = ::dlerror();
    return unavailable(std::string("cannot be loaded: ") + (e ? e : "unknown dlopen error"));
  }
  auto factory = reinterpret_cast<BackendFactory>(::dlsym(handle, kBackendFactorySymbol));
  if (factory == nullptr) {
    const char* e = ::dlerror();
    ::dlclose(handle);
    return unavailable(std::string("has no ") + kBackendFactorySymbol + ": " +
                       (e ? e : "symbol is null"));
  }
  RuntimeBackend* backend = factory(kBackendAbiVersion);
  if (backend == nullptr) {
    ::dlclose(handle);
    return unavailable("was built for another agent (backend ABI version mismatch, want " +
                       std::to_string(kBackendAbiVersion) + ")");
  }
  loaded.emplace(path, backend);
  return backend;
}

}  // namespace edgeprune::agent
