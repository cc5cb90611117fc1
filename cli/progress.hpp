#pragma once
// Progress on the terminal. LiveView redraws a block of lines in place while stdout is a terminal
// and, when it is not (a pipe, a log, CI), prints as plain lines only the lines that changed.
// UploadMeter shows an upload's bytes, share and rate on stderr: one line redrawn on a terminal,
// else a line at most every few seconds and one at the end.
//
// Thread-safety: not thread-safe; the CLI draws from one thread.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace edgeprune::ctl {

class LiveView {
 public:
  LiveView();  // decides from isatty(stdout)
  void Show(const std::vector<std::string>& lines);
  bool tty() const { return tty_; }

 private:
  bool tty_;
  std::size_t drawn_ = 0;  // lines on screen from the last Show (terminal only)
  std::vector<std::string> last_;
};

class UploadMeter {
 public:
  explicit UploadMeter(std::string label);
  void Update(std::uint64_t sent, std::uint64_t total);
  // Called once the request is over; the last line was printed when the last byte went out.
  void Finish();

 private:
  std::string Line(std::uint64_t sent, std::uint64_t total, double seconds) const;

  std::string label_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::uint64_t sent_ = 0, total_ = 0;
  bool printed_ = false;
  bool done_ = false;
};

// The interval of a watch loop; sleeping is how a polling CLI waits for the server.
void SleepSeconds(double seconds);

}  // namespace edgeprune::ctl
