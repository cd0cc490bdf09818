#include "core/comm/reduce_kernels.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/check.h"

namespace trident::comm {
namespace {

// Widening of one element into its accumulator type.
inline float Widen(float v) { return v; }
inline float Widen(BFloat16 v) { return ToFloat(v); }
inline float Widen(Float16 v) { return ToFloat(v); }
inline int32_t Widen(int32_t v) { return v; }
inline int64_t Widen(int64_t v) { return v; }

template <typename T>
T Narrow(float v);
template <>
inline float Narrow<float>(float v) {
  return v;
}
template <>
inline BFloat16 Narrow<BFloat16>(float v) {
  return ToBFloat16(v);
}
template <>
inline Float16 Narrow<Float16>(float v) {
  return ToFloat16(v);
}

template <typename A>
inline A Add(A a, A b) {
  if constexpr (std::is_integral_v<A>) {
    // Wrap around on overflow instead of undefined behaviour.
    using U = std::make_unsigned_t<A>;
    return static_cast<A>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}

// Max and min propagate a NaN from either side (a != a only for NaN).
template <typename A>
inline A Max(A a, A b) {
  if constexpr (std::is_floating_point_v<A>) {
    return (a > b || a != a) ? a : b;
  } else {
    return a > b ? a : b;
  }
}

template <typename A>
inline A Min(A a, A b) {
  if constexpr (std::is_floating_point_v<A>) {
    return (a < b || a != a) ? a : b;
  } else {
    return a < b ? a : b;
  }
}

template <typename T>
using Acc = decltype(Widen(T{}));

// One loop per (type, op) pair so the compiler vectorises each.
template <typename T>
void Accumulate(Acc<T>* __restrict acc, const T* __restrict src, int64_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      for (int64_t i = 0; i < n; ++i) acc[i] = Add(acc[i], Widen(src[i]));
      return;
    case ReduceOp::kMax:
      for (int64_t i = 0; i < n; ++i) acc[i] = Max(acc[i], Widen(src[i]));
      return;
    case ReduceOp::kMin:
      for (int64_t i = 0; i < n; ++i) acc[i] = Min(acc[i], Widen(src[i]));
      return;
  }
}

template <typename T>
void Divide(Acc<T>* acc, int64_t n, int divisor) {
  const Acc<T> d = static_cast<Acc<T>>(divisor);
  for (int64_t i = 0; i < n; ++i) acc[i] = acc[i] / d;
}

// Calls fn(T{}) with the C++ element type of `dtype`.
template <typename Fn>
void Dispatch(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return fn(float{});
    case DType::kBFloat16:
      return fn(BFloat16{});
    case DType::kFloat16:
      return fn(Float16{});
    case DType::kInt32:
      return fn(int32_t{});
    case DType::kInt64:
      return fn(int64_t{});
  }
  TRIDENT_CHECK(false) << "unknown dtype " << static_cast<int>(dtype);
}

// Block of elements the 16-bit in-place kernels widen at a time (on the stack).
constexpr int64_t kBlock = 1024;

}  // namespace

DType AccumulatorDType(DType dtype) {
  return (dtype == DType::kBFloat16 || dtype == DType::kFloat16) ? DType::kFloat32 : dtype;
}

void WidenInto(void* acc, const void* src, int64_t count, DType dtype) {
  Dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto* a = static_cast<Acc<T>*>(acc);
    const auto* s = static_cast<const T*>(src);
    if constexpr (std::is_same_v<Acc<T>, T>) {
      if (count > 0) std::memcpy(a, s, count * sizeof(T));
    } else {
      for (int64_t i = 0; i < count; ++i) a[i] = Widen(s[i]);
    }
  });
}

void AccumulateInto(void* acc, const void* src, int64_t count, DType dtype, ReduceOp op) {
  Dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    Accumulate<T>(static_cast<Acc<T>*>(acc), static_cast<const T*>(src), count, op);
  });
}

void DivideAccumulator(void* acc, int64_t count, DType dtype, int divisor) {
  TRIDENT_CHECK_GT(divisor, 0);
  Dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    Divide<T>(static_cast<Acc<T>*>(acc), count, divisor);
  });
}

void NarrowInto(void* dst, const void* acc, int64_t count, DType dtype) {
  Dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto* d = static_cast<T*>(dst);
    const auto* a = static_cast<const Acc<T>*>(acc);
    if constexpr (std::is_same_v<Acc<T>, T>) {
      if (count > 0 && static_cast<const void*>(d) != static_cast<const void*>(a)) {
        std::memcpy(d, a, count * sizeof(T));
      }
    } else {
      for (int64_t i = 0; i < count; ++i) d[i] = Narrow<T>(a[i]);
    }
  });
}

void ReduceElementsInto(void* dst, const void* src, int64_t count, DType dtype, ReduceOp op) {
  Dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* d = static_cast<T*>(dst);
    const T* s = static_cast<const T*>(src);
    if constexpr (std::is_same_v<Acc<T>, T>) {
      Accumulate<T>(d, s, count, op);
    } else {
      float block[kBlock];
      for (int64_t start = 0; start < count; start += kBlock) {
        const int64_t n = std::min(kBlock, count - start);
        for (int64_t i = 0; i < n; ++i) block[i] = Widen(d[start + i]);
        Accumulate<T>(block, s + start, n, op);
        for (int64_t i = 0; i < n; ++i) d[start + i] = Narrow<T>(block[i]);
      }
    }
  });
}

void DivideElements(void* data, int64_t count, DType dtype, int divisor) {
  TRIDENT_CHECK_GT(divisor, 0);
  Dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* d = static_cast<T*>(data);
    if constexpr (std::is_same_v<Acc<T>, T>) {
      Divide<T>(d, count, divisor);
    } else {
      float block[kBlock];
      for (int64_t start = 0; start < count; start += kBlock) {
        const int64_t n = std::min(kBlock, count - start);
        for (int64_t i = 0; i < n; ++i) block[i] = Widen(d[start + i]);
        Divide<T>(block, n, divisor);
        for (int64_t i = 0; i < n; ++i) d[start + i] = Narrow<T>(block[i]);
      }
    }
  });
}

}  // namespace trident::comm
