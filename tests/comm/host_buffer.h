#ifndef TRIDENT_TESTS_COMM_HOST_BUFFER_H_
#define TRIDENT_TESTS_COMM_HOST_BUFFER_H_

// Typed host buffers with exactly known contents for communicator tests: every
// rank's data is a function of (dtype, rank, index) that any rank can compute,
// so each rank can state the exact result of any collective without talking to
// the others.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"

namespace trident::comm::suite {

// Element `i` of rank `rank`'s test data, an integer. The part that varies is in
// [-5, 5] and differs between any 8 ranks (so max and min have one winner and
// sums over 8 ranks are exact even in bf16); int32 scales it by 2^16 and int64
// by 2^40 (plus the rank) so that their high bits are used too.
int64_t ElementValue(DType dtype, int rank, int64_t i);

class HostBuffer {
 public:
  HostBuffer(DType dtype, int64_t count);

  DType dtype() const { return dtype_; }
  int64_t count() const { return count_; }
  int64_t bytes() const { return count_ * static_cast<int64_t>(DTypeSize(dtype_)); }
  void* element(int64_t i);
  const void* element(int64_t i) const;
  Buffer buffer() { return Buffer{element(0), count_, dtype_}; }
  ConstBuffer const_buffer() const { return ConstBuffer(element(0), count_, dtype_); }

  // Stores the integer `value` (exactly, for the ranges ElementValue makes).
  void SetInteger(int64_t i, int64_t value);
  // Stores the reduction of `values` (one per rank, in rank order) as every
  // backend defines it: exact integer sum, max, min; avg = the float sum divided
  // by the number of ranks and rounded once (integers: truncating division).
  void SetReduction(int64_t i, absl::Span<const int64_t> values, ReduceOp op);

  uint64_t Bits(int64_t i) const;
  // The element's value and bits, for failure messages.
  std::string Format(int64_t i) const;

 private:
  DType dtype_;
  int64_t count_;
  std::vector<uint64_t> storage_;  // 8-byte aligned for every dtype.
};

// EXPECTs that `actual` and `expected` are equal bit for bit (NaN never equals
// anything it was not copied from); on failure reports how many elements differ
// and the first few, prefixed with `where`.
void ExpectSameBits(const HostBuffer& actual, const HostBuffer& expected, absl::string_view where);

}  // namespace trident::comm::suite

#endif  // TRIDENT_TESTS_COMM_HOST_BUFFER_H_
