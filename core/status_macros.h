#ifndef TRIDENT_CORE_STATUS_MACROS_H_
#define TRIDENT_CORE_STATUS_MACROS_H_

// Early-return helpers for absl::Status / absl::StatusOr, as in Google code.

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TRIDENT_STATUS_CONCAT_INNER(a, b) a##b
#define TRIDENT_STATUS_CONCAT(a, b) TRIDENT_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is an error.
#define RETURN_IF_ERROR(expr)                                      \
  do {                                                             \
    ::absl::Status trident_return_if_error_status = (expr);        \
    if (!trident_return_if_error_status.ok()) {                    \
      return trident_return_if_error_status;                       \
    }                                                              \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares x from an absl::StatusOr, or
// returns its error.
#define ASSIGN_OR_RETURN(lhs, rexpr)                                               \
  TRIDENT_ASSIGN_OR_RETURN_IMPL(TRIDENT_STATUS_CONCAT(trident_statusor_, __LINE__), \
                                lhs, rexpr)

#define TRIDENT_ASSIGN_OR_RETURN_IMPL(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) {                                     \
    return std::move(statusor).status();                    \
  }                                                         \
  lhs = std::move(statusor).value()

#endif  // TRIDENT_CORE_STATUS_MACROS_H_
