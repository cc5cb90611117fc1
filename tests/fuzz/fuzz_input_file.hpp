#pragma once
// For readers that take a path (IDX, TOML, TorchScript archives): each input is written to one
// private file per fuzzing process, removed at exit.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace edgeprune::fuzz {

class InputFile {
 public:
  explicit InputFile(const char* suffix) {
    std::string dir = std::filesystem::temp_directory_path().string() + "/edgeprune-fuzz-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) std::abort();
    dir_ = dir;
    path_ = dir + "/input" + suffix;
  }
  ~InputFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& Write(const std::uint8_t* data, std::size_t size) {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
    return path_;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string path_;
};

}  // namespace edgeprune::fuzz
