#include "temp_dir.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace edgeprune::testing {

namespace stdfs = std::filesystem;

TempDir::TempDir(const std::string& prefix) {
  std::error_code ec;
  stdfs::path base = stdfs::temp_directory_path(ec);
  if (ec) base = ".";
  std::string tmpl = (base / (prefix + "-XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + tmpl);
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  stdfs::remove_all(path_, ec);
}

std::string TempDir::File(const std::string& name) const { return path_ + "/" + name; }

std::string TempDir::Subdir(const std::string& name) const {
  std::string p = File(name);
  stdfs::create_directories(p);
  return p;
}

std::string TempDir::WriteFile(const std::string& name, const std::string& contents) const {
  std::string p = File(name);
  stdfs::create_directories(stdfs::path(p).parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!out) throw std::runtime_error("cannot write " + p);
  return p;
}

}  // namespace edgeprune::testing
