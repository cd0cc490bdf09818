#include "tests/comm/host_buffer.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/check.h"
#include "gtest/gtest.h"

namespace trident::comm::suite {

int64_t ElementValue(DType dtype, int rank, int64_t i) {
  // 7 is invertible mod 11, so ranks 0..10 get distinct values at every i.
  const int64_t small = (rank * 7 + i * 3) % 11 - 5;
  switch (dtype) {
    case DType::kInt32:
      return small * 65536 + rank;
    case DType::kInt64:
      return small * (int64_t{1} << 40) + rank;
    default:
      return small;
  }
}

HostBuffer::HostBuffer(DType dtype, int64_t count)
    : dtype_(dtype),
      count_(count),
      storage_(static_cast<size_t>((count * DTypeSize(dtype) + 7) / 8 + 1)) {}

void* HostBuffer::element(int64_t i) {
  return reinterpret_cast<char*>(storage_.data()) + i * DTypeSize(dtype_);
}

const void* HostBuffer::element(int64_t i) const {
  return reinterpret_cast<const char*>(storage_.data()) + i * DTypeSize(dtype_);
}

namespace {

// Stores float `v` rounded to a floating dtype.
void StoreFloat(void* dst, DType dtype, float v) {
  switch (dtype) {
    case DType::kFloat32:
      std::memcpy(dst, &v, sizeof(v));
      return;
    case DType::kBFloat16: {
      const BFloat16 b = ToBFloat16(v);
      std::memcpy(dst, &b, sizeof(b));
      return;
    }
    case DType::kFloat16: {
      const Float16 h = ToFloat16(v);
      std::memcpy(dst, &h, sizeof(h));
      return;
    }
    default:
      TRIDENT_CHECK(false) << "not a float dtype";
  }
}

}  // namespace

void HostBuffer::SetInteger(int64_t i, int64_t value) {
  TRIDENT_CHECK(i >= 0 && i < count_) << i;
  void* dst = element(i);
  switch (dtype_) {
    case DType::kInt32: {
      const int32_t v = static_cast<int32_t>(value);
      std::memcpy(dst, &v, sizeof(v));
      return;
    }
    case DType::kInt64:
      std::memcpy(dst, &value, sizeof(value));
      return;
    default:
      StoreFloat(dst, dtype_, static_cast<float>(value));
  }
}

void HostBuffer::SetReduction(int64_t i, absl::Span<const int64_t> values, ReduceOp op) {
  TRIDENT_CHECK(!values.empty());
  int64_t sum = 0;
  for (int64_t v : values) sum += v;
  const int64_t n = static_cast<int64_t>(values.size());
  switch (op) {
    case ReduceOp::kSum:
      return SetInteger(i, sum);
    case ReduceOp::kMax:
      return SetInteger(i, *std::max_element(values.begin(), values.end()));
    case ReduceOp::kMin:
      return SetInteger(i, *std::min_element(values.begin(), values.end()));
    case ReduceOp::kAvg:
      if (dtype_ == DType::kInt32 || dtype_ == DType::kInt64) return SetInteger(i, sum / n);
      return StoreFloat(element(i), dtype_, static_cast<float>(sum) / static_cast<float>(n));
  }
}

uint64_t HostBuffer::Bits(int64_t i) const {
  uint64_t bits = 0;
  std::memcpy(&bits, element(i), DTypeSize(dtype_));
  return bits;
}

std::string HostBuffer::Format(int64_t i) const {
  const void* p = element(i);
  std::string value;
  switch (dtype_) {
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, p, sizeof(v));
      value = absl::StrCat(v);
      break;
    }
    case DType::kBFloat16: {
      BFloat16 v;
      std::memcpy(&v, p, sizeof(v));
      value = absl::StrCat(ToFloat(v));
      break;
    }
    case DType::kFloat16: {
      Float16 v;
      std::memcpy(&v, p, sizeof(v));
      value = absl::StrCat(ToFloat(v));
      break;
    }
    case DType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, sizeof(v));
      value = absl::StrCat(v);
      break;
    }
    case DType::kInt64: {
      int64_t v;
      std::memcpy(&v, p, sizeof(v));
      value = absl::StrCat(v);
      break;
    }
  }
  return absl::StrFormat("%s (0x%x)", value, Bits(i));
}

void ExpectSameBits(const HostBuffer& actual, const HostBuffer& expected, absl::string_view where) {
  ASSERT_EQ(actual.dtype(), expected.dtype()) << where;
  ASSERT_EQ(actual.count(), expected.count()) << where;
  int64_t differing = 0;
  std::string examples;
  for (int64_t i = 0; i < actual.count(); ++i) {
    if (actual.Bits(i) == expected.Bits(i)) continue;
    if (++differing <= 5) {
      absl::StrAppend(&examples, "\n  [", i, "] got ", actual.Format(i), ", want ",
                      expected.Format(i));
    }
  }
  EXPECT_EQ(differing, 0) << where << ": " << differing << " of " << actual.count()
                          << " elements differ" << examples;
}

}  // namespace trident::comm::suite
