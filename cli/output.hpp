#pragma once
// What the CLI prints: human tables by default, the server's JSON unchanged with -o json, and the
// small formatters the tables share (sizes, times, fields that may be missing or null). Tables
// never fail on an unexpected answer: a missing field prints "-".
//
// Thread-safety: not thread-safe; the CLI prints from one thread.

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace edgeprune::ctl {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void Row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::size_t size() const { return rows_.size(); }
  // Left-aligned columns two spaces apart; the last column is not padded.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// The member `key` of an object as display text: strings as they are (escaped onto one line),
// numbers in their shortest form, booleans yes/no, arrays joined by ",", null or absent "-".
std::string Field(const boost::json::value& object, const std::string& key);
std::string Text(const boost::json::value& v);
// The member `key` of an object, or null when absent or when `object` is not an object.
const boost::json::value& Member(const boost::json::value& object, const std::string& key);
// A member that is a number (int or double), or fallback.
double Number(const boost::json::value& object, const std::string& key, double fallback = -1);
// The "items" array of a list envelope (empty when the answer has none).
const boost::json::array& Items(const boost::json::value& list);

std::string Bytes(double n);              // 1536 → "1.5 KiB"
std::string Count(double n);              // 1234567 → "1.23M"
std::string TimeMs(double unix_ms);       // UTC "2026-12-05 05:46:27", "-" for ≤ 0
std::string Fixed(double v, int digits);  // "-" for a negative sentinel

// "key: value" lines for an object's scalar members, in the given order.
std::string Describe(const boost::json::value& object, const std::vector<std::string>& keys);

void PrintOut(const std::string& text);  // stdout, a newline added when missing

}  // namespace edgeprune::ctl
