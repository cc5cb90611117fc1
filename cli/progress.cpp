#include "cli/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "cli/output.hpp"

namespace edgeprune::ctl {

LiveView::LiveView() : tty_(::isatty(STDOUT_FILENO) == 1) {}

void LiveView::Show(const std::vector<std::string>& lines) {
  if (!tty_) {
    // A log gets the lines that changed (the first time: all of them), not the block again.
    for (const auto& l : lines) {
      if (std::find(last_.begin(), last_.end(), l) == last_.end()) std::printf("%s\n", l.c_str());
    }
    std::fflush(stdout);
    last_ = lines;
    return;
  }
  // Up to the first line drawn last time, clear to the end of the screen, draw again.
  if (drawn_ > 0) std::printf("\033[%zuA\r\033[J", drawn_);
  for (const auto& l : lines) std::printf("%s\n", l.c_str());
  std::fflush(stdout);
  drawn_ = lines.size();
  last_ = lines;
}

UploadMeter::UploadMeter(std::string label)
    : label_(std::move(label)),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

std::string UploadMeter::Line(std::uint64_t sent, std::uint64_t total, double seconds) const {
  char buf[256];
  const double rate = seconds > 0 ? static_cast<double>(sent) / seconds : 0;
  const double share = total > 0 ? 100.0 * static_cast<double>(sent) / static_cast<double>(total) : 100;
  std::snprintf(buf, sizeof(buf), "uploading %s: %s of %s (%.0f%%), %s/s", label_.c_str(),
                Bytes(static_cast<double>(sent)).c_str(), Bytes(static_cast<double>(total)).c_str(),
                share, Bytes(rate).c_str());
  return buf;
}

void UploadMeter::Update(std::uint64_t sent, std::uint64_t total) {
  sent_ = sent;
  total_ = total;
  const auto now = std::chrono::steady_clock::now();
  const double s = std::chrono::duration<double>(now - start_).count();
  if (sent >= total && !done_) {
    // The last byte is out: the rate stops here, the server's checks are not part of it.
    done_ = true;
    std::fprintf(stderr, "%s%s in %.1f s; the server is checking it\n",
                 tty_ && printed_ ? "\r\033[K" : "", Line(sent, total, s).c_str(), s);
    return;
  }
  // A terminal redraws ten times a second; a log gets a line every two seconds.
  if (now - last_print_ < (tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(2000))) return;
  last_print_ = now;
  std::fprintf(stderr, tty_ ? "\r\033[K%s" : "%s\n", Line(sent, total, s).c_str());
  printed_ = true;
}

void UploadMeter::Finish() {
  // Cut short: end the redrawn line so the error starts on its own.
  if (!done_ && tty_ && printed_) std::fprintf(stderr, "\n");
}

void SleepSeconds(double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

}  // namespace edgeprune::ctl
