#pragma once
// What an operator's API token may do. The fleet stores and issues roles with tokens; the HTTP
// layer compares them with what a route requires. Ordered: kViewer < kOperator < kAdmin.
//
// Thread-safety: plain values and pure functions.

#include <optional>
#include <string_view>

namespace edgeprune {

enum class Role { kViewer = 1, kOperator = 2, kAdmin = 3 };

const char* RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

}  // namespace edgeprune
