#include "server/store/sql_placeholders.hpp"

#include <algorithm>
#include <cctype>

namespace edgeprune::store {
namespace {

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Copies from `i` through the closing `quote` ('' or "" inside stay part of it); returns the
// index after it.
std::size_t CopyQuoted(std::string_view sql, std::size_t i, char quote, std::string& out) {
  out += sql[i++];
  while (i < sql.size()) {
    out += sql[i];
    if (sql[i++] == quote) {
      if (i < sql.size() && sql[i] == quote) {
        out += sql[i++];
        continue;
      }
      break;
    }
  }
  return i;
}

}  // namespace

TranslatedSql ToDollarParameters(std::string_view sql) {
  TranslatedSql out;
  out.sql.reserve(sql.size() + 16);
  auto set_name = [&](int index, const std::string& name) {
    if (static_cast<int>(out.names.size()) < index) out.names.resize(index);
    out.names[index - 1] = name;
  };
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      i = CopyQuoted(sql, i, c, out.sql);
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const std::size_t end = std::min(sql.find('\n', i), sql.size());
      out.sql.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      const std::size_t close = sql.find("*/", i + 2);
      const std::size_t end = close == std::string_view::npos ? sql.size() : close + 2;
      out.sql.append(sql.substr(i, end - i));
      i = end;
    } else if (c == ':' && i + 1 < sql.size() && sql[i + 1] == ':') {
      out.sql += "::";  // a PostgreSQL cast, not a parameter
      i += 2;
    } else if (c == '?') {
      std::size_t j = i + 1;
      while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) ++j;
      int index = j > i + 1 ? std::stoi(std::string(sql.substr(i + 1, j - i - 1))) : 0;
      if (index == 0) index = out.parameters + 1;
      out.parameters = std::max(out.parameters, index);
      set_name(index, out.names.size() >= static_cast<std::size_t>(index) ? out.names[index - 1]
                                                                          : std::string());
      out.sql += "$" + std::to_string(index);
      i = j;
    } else if (c == ':' && i + 1 < sql.size() && IsNameChar(sql[i + 1]) &&
               std::isdigit(static_cast<unsigned char>(sql[i + 1])) == 0) {
      std::size_t j = i + 1;
      while (j < sql.size() && IsNameChar(sql[j])) ++j;
      const std::string name(sql.substr(i, j - i));
      const auto found = std::find(out.names.begin(), out.names.end(), name);
      int index = 0;
      if (found != out.names.end()) {
        index = static_cast<int>(found - out.names.begin()) + 1;
      } else {
        index = ++out.parameters;
        set_name(index, name);
      }
      out.sql += "$" + std::to_string(index);
      i = j;
    } else {
      out.sql += c;
      ++i;
    }
  }
  out.names.resize(out.parameters);
  return out;
}

}  // namespace edgeprune::store
