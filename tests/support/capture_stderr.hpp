#pragma once
// Captures what the process writes to file descriptor 2 (the log sink) while it is alive, for
// tests that check what the real logger wrote. Not thread-safe: one capture at a time.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "edgeprune/common/fs.hpp"
#include "edgeprune/common/log.hpp"

namespace edgeprune::testing {

class CaptureStderr {
 public:
  explicit CaptureStderr(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 2);
      ::close(fd);
    }
  }
  ~CaptureStderr() { Stop(); }
  CaptureStderr(const CaptureStderr&) = delete;
  CaptureStderr& operator=(const CaptureStderr&) = delete;

  // Restores stderr and returns everything written meanwhile.
  std::string Stop() {
    if (saved_ >= 0) {
      spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
      std::fflush(stderr);
      ::dup2(saved_, 2);
      ::close(saved_);
      saved_ = -1;
    }
    auto text = fs::ReadFile(path_);
    return text.ok() ? *text : std::string();
  }

 private:
  std::string path_;
  int saved_ = -1;
};

}  // namespace edgeprune::testing
