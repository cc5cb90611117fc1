// Logging of untrusted strings (issue 13, item 8): whatever a client puts in a host name or an
// event reason, one log call writes exactly one line to the real stderr sink.
#include "edgeprune/common/log.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "edgeprune/common/log_safety.hpp"
#include "support/capture_stderr.hpp"
#include "support/temp_dir.hpp"

namespace edgeprune {
namespace {

TEST(LogEscape, ControlCharactersBecomeVisibleEscapes) {
  EXPECT_EQ(log::Escape("plain text: ok"), "plain text: ok");
  EXPECT_EQ(log::Escape("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(log::Escape(std::string("\x1b[31m\x7f\0z", 8)), "\\x1b[31m\\x7f\\x00z");
  // A doubled backslash keeps a literal "\n" in the input distinguishable from an escaped one.
  EXPECT_EQ(log::Escape("\\n"), "\\\\n");
}

TEST(LogEscape, AForgedLineStaysInsideItsLogLine) {
  edgeprune::testing::TempDir dir;
  edgeprune::testing::CaptureStderr capture(dir.File("stderr.txt"));
  log::Get("log-test")
      ->warn("device {} refused: {}", "dev-1",
             "bad\n2026-12-04T00:00:00.000 info  [fleet] enrolled device dev-evil");
  const std::string text = capture.Stop();
  std::istringstream lines(text);
  std::string line;
  int count = 0;
  std::string first;
  while (std::getline(lines, line)) {
    if (count++ == 0) first = line;
  }
  EXPECT_EQ(count, 1) << text;
  EXPECT_NE(first.find("[log-test] device dev-1 refused: bad\\n2026-12-04"), std::string::npos)
      << first;
}

TEST(LogThrottle, OneLinePerPeriodCountingTheRest) {
  log::Throttle throttle(std::chrono::hours(1));
  std::uint64_t suppressed = 99;
  EXPECT_TRUE(throttle.Allow(&suppressed));
  EXPECT_EQ(suppressed, 0u);
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(throttle.Allow(&suppressed));

  // After the period the next line passes and reports what was skipped meanwhile.
  log::Throttle short_period(std::chrono::milliseconds(5));
  EXPECT_TRUE(short_period.Allow(&suppressed));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(short_period.Allow(&suppressed));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(short_period.Allow(&suppressed));
  EXPECT_EQ(suppressed, 3u);
}

}  // namespace
}  // namespace edgeprune
