#pragma once
// RAII temporary directory for tests: created empty under $TMPDIR (or the system default),
// removed with everything in it on destruction.
//
//   edgeprune::testing::TempDir dir;
//   std::string db = dir.File("store.db");
//
// Thread-safety: the object is not shared; distinct TempDirs never collide.

#include <string>

namespace edgeprune::testing {

class TempDir {
 public:
  // prefix appears in the directory name, handy when a test leaves one behind on a crash.
  explicit TempDir(const std::string& prefix = "edgeprune-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name (does not create anything).
  std::string File(const std::string& name) const;
  // Creates a sub-directory (and parents) and returns its path.
  std::string Subdir(const std::string& name) const;
  // Writes a file (creating parent dirs) and returns its path. Aborts the test binary on failure.
  std::string WriteFile(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

}  // namespace edgeprune::testing
