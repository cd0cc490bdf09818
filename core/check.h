#ifndef TRIDENT_CORE_CHECK_H_
#define TRIDENT_CORE_CHECK_H_

// Internal-invariant checks. Debian's Abseil (20220623) has no absl/log, so the
// project carries its own CHECK. Use it only for programming errors; anything a
// user can cause (a bad layout, config or file) returns an absl::Status instead.

#include <sstream>
#include <string>

namespace trident::internal {

// Prints "file:line: CHECK failed: <condition> <message>" to stderr and aborts.
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              const std::string& message);

// Collects the streamed message of a failing check; aborts in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition)
      : file_(file), line_(line), condition_(condition) {}
  [[noreturn]] ~CheckFailure() { CheckFailed(file_, line_, condition_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  const char* file_;
  int line_;
  const char* condition_;
  std::ostringstream stream_;
};

// Lets `CHECK(x) << "message"` compile to a void expression.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace trident::internal

#define TRIDENT_CHECK(condition)                                   \
  (condition) ? (void)0                                            \
              : ::trident::internal::Voidify() &                   \
                    ::trident::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define TRIDENT_CHECK_EQ(a, b) TRIDENT_CHECK((a) == (b)) << (a) << " vs " << (b) << " "
#define TRIDENT_CHECK_NE(a, b) TRIDENT_CHECK((a) != (b)) << (a) << " vs " << (b) << " "
#define TRIDENT_CHECK_LT(a, b) TRIDENT_CHECK((a) < (b)) << (a) << " vs " << (b) << " "
#define TRIDENT_CHECK_LE(a, b) TRIDENT_CHECK((a) <= (b)) << (a) << " vs " << (b) << " "
#define TRIDENT_CHECK_GT(a, b) TRIDENT_CHECK((a) > (b)) << (a) << " vs " << (b) << " "
#define TRIDENT_CHECK_GE(a, b) TRIDENT_CHECK((a) >= (b)) << (a) << " vs " << (b) << " "

// Aborts when `expr` (an absl::Status) is not OK; for call sites where failure is
// a bug (tests, internal invariants).
#define TRIDENT_CHECK_OK(expr)                                                      \
  do {                                                                              \
    const ::absl::Status trident_check_ok_status = (expr);                          \
    TRIDENT_CHECK(trident_check_ok_status.ok()) << trident_check_ok_status.ToString(); \
  } while (0)

#endif  // TRIDENT_CORE_CHECK_H_
