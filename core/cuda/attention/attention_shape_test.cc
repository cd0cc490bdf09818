// Host-side facts of a GPU attention call: the argument checks (they run before
// anything touches a device, so they are tested here on CPU tensors), the
// strided views that let cuDNN read the packed qkv/out tensors in place
// (checked element by element against the layout of core/ops/attention.h),
// and the plan cache key.

#include "core/cuda/attention/attention_shape.h"

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "core/tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace trident::cuda {
namespace {

using ::testing::HasSubstr;

int64_t At(const StridedView& v, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return v.offset + i0 * v.strides[0] + i1 * v.strides[1] + i2 * v.strides[2] + i3 * v.strides[3];
}

constexpr AttentionShape kOdd{.batch = 2, .seq = 5, .heads = 3, .head_dim = 4};

TEST(AttentionViewsTest, QkvHeadViewsAddressThePackedLayout) {
  const AttentionShape s = kOdd;
  const int64_t c = s.channels();
  for (QkvPart part : {QkvPart::kQuery, QkvPart::kKey, QkvPart::kValue}) {
    const StridedView v = QkvHeadView(s, part);
    EXPECT_EQ(v.dims, (std::array<int64_t, 4>{2, 3, 5, 4}));
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < s.heads; ++h)
        for (int64_t t = 0; t < s.seq; ++t)
          for (int64_t d = 0; d < s.head_dim; ++d) {
            // qkv[b, t, part, h, d] of a contiguous [B, T, 3, H, D].
            const int64_t packed =
                ((b * s.seq + t) * 3 + static_cast<int>(part)) * c + h * s.head_dim + d;
            ASSERT_EQ(At(v, b, h, t, d), packed) << b << " " << h << " " << t << " " << d;
          }
  }
}

TEST(AttentionViewsTest, TransposeLastTwoAddressesTheSameElements) {
  const StridedView v = OutHeadView(kOdd);
  const StridedView t = TransposeLastTwo(v);
  EXPECT_EQ(t.dims, (std::array<int64_t, 4>{2, 3, 4, 5}));
  for (int64_t i = 0; i < kOdd.seq; ++i)
    for (int64_t d = 0; d < kOdd.head_dim; ++d) EXPECT_EQ(At(t, 1, 2, d, i), At(v, 1, 2, i, d));
  EXPECT_EQ(TransposeLastTwo(t), v);
}

TEST(AttentionViewsTest, KeyTransposedSwapsTokenAndFeature) {
  const StridedView k = QkvHeadView(kOdd, QkvPart::kKey);
  const StridedView kt = KeyTransposedView(kOdd);
  EXPECT_EQ(kt.dims, (std::array<int64_t, 4>{2, 3, 4, 5}));
  for (int64_t t = 0; t < kOdd.seq; ++t)
    for (int64_t d = 0; d < kOdd.head_dim; ++d) EXPECT_EQ(At(kt, 1, 2, d, t), At(k, 1, 2, t, d));
}

TEST(AttentionViewsTest, OutAndStatsViewsAddressTheirLayouts) {
  const AttentionShape s = kOdd;
  const StridedView o = OutHeadView(s);
  const StridedView st = StatsView(s);
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t t = 0; t < s.seq; ++t) {
        EXPECT_EQ(At(st, b, h, t, 0), (b * s.heads + h) * s.seq + t);  // lse [B, H, T]
        for (int64_t d = 0; d < s.head_dim; ++d) {
          EXPECT_EQ(At(o, b, h, t, d), (b * s.seq + t) * s.channels() + h * s.head_dim + d);
        }
      }
  EXPECT_EQ(ScoreView(s).strides, (std::array<int64_t, 4>{3 * 25, 25, 5, 1}));
}

TEST(SdpaPlanKeyTest, DistinguishesShapeDTypeAndDirection) {
  const SdpaPlanKey base{.shape = {2, 1024, 12, 64}, .dtype = DType::kBFloat16};
  absl::flat_hash_set<SdpaPlanKey> keys = {base};
  SdpaPlanKey other = base;
  other.shape.seq = 100;
  keys.insert(other);
  other = base;
  other.dtype = DType::kFloat16;
  keys.insert(other);
  other = base;
  other.direction = SdpaDirection::kBackward;
  keys.insert(other);
  other = base;
  other.shape.heads = 6;  // a tp=2 rank's heads
  keys.insert(other);
  EXPECT_EQ(keys.size(), 5u);
  EXPECT_TRUE(keys.contains(SdpaPlanKey{.shape = {2, 1024, 12, 64}, .dtype = DType::kBFloat16}));
  EXPECT_EQ(SdpaPlanKeyToString(base), "fwd bf16 B=2 T=1024 H=12 D=64");
}

// --- Argument checks, on CPU tensors: everything but the device runs first. ---

struct Args {
  Tensor qkv = Tensor::Empty({2, 5, 3 * 3 * 4}, DType::kBFloat16);
  Tensor out = Tensor::Empty({2, 5, 12}, DType::kBFloat16);
  Tensor lse = Tensor::Empty({2, 3, 5}, DType::kFloat32);
  Tensor dout = Tensor::Empty({2, 5, 12}, DType::kBFloat16);
  Tensor dqkv = Tensor::Empty({2, 5, 36}, DType::kBFloat16);
  int heads = 3;

  absl::Status Forward() const {
    return CheckAttentionForwardArgs("AttentionForward", qkv, heads, out, lse).status();
  }
  absl::Status Backward() const {
    return CheckAttentionBackwardArgs("AttentionBackward", qkv, out, lse, dout, heads, dqkv)
        .status();
  }
};

void ExpectInvalid(const absl::Status& status, const std::string& needle) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(needle));
}

TEST(AttentionArgsTest, WellFormedCpuTensorsFailOnlyForTheirDevice) {
  const Args a;
  ExpectInvalid(a.Forward(), "qkv is on cpu: must be on a CUDA device");
  ExpectInvalid(a.Backward(), "qkv is on cpu: must be on a CUDA device");
}

TEST(AttentionArgsTest, RefusesBadHeadCounts) {
  Args a;
  a.heads = 0;
  ExpectInvalid(a.Forward(), "num_heads is 0: must be > 0");
  a.heads = 5;  // 36 is not 3 * 5 * D
  ExpectInvalid(a.Forward(), "last dim 36 that is not 3 * num_heads (5) * head_dim");
  ExpectInvalid(a.Backward(), "num_heads (5)");
}

TEST(AttentionArgsTest, RefusesWrongShapes) {
  Args a;
  a.out = Tensor::Empty({2, 5, 13}, DType::kBFloat16);
  ExpectInvalid(a.Forward(), "out has shape [2, 5, 13], expected [2, 5, 12]");
  a = Args();
  a.lse = Tensor::Empty({2, 5, 3}, DType::kFloat32);
  ExpectInvalid(a.Forward(), "lse has shape");
  a = Args();
  a.qkv = Tensor::Empty({10, 36}, DType::kBFloat16);
  ExpectInvalid(a.Forward(), "must be 3-d");
  a = Args();
  a.dqkv = Tensor::Empty({2, 5, 12}, DType::kBFloat16);
  ExpectInvalid(a.Backward(), "dqkv has shape");
  a = Args();
  a.dout = Tensor::Empty({2, 4, 12}, DType::kBFloat16);
  ExpectInvalid(a.Backward(), "dout has shape");
}

TEST(AttentionArgsTest, RefusesMixedOrNonFloatDTypes) {
  Args a;
  a.out = Tensor::Empty({2, 5, 12}, DType::kFloat32);
  ExpectInvalid(a.Forward(), "out has dtype fp32, expected qkv's bf16");
  a = Args();
  a.lse = Tensor::Empty({2, 3, 5}, DType::kBFloat16);
  ExpectInvalid(a.Forward(), "lse has dtype bf16: must be fp32");
  a = Args();
  a.qkv = Tensor::Empty({2, 5, 36}, DType::kInt32);
  ExpectInvalid(a.Forward(), "qkv has dtype int32: must be fp32, bf16 or fp16");
  a = Args();
  a.dqkv = Tensor::Empty({2, 5, 36}, DType::kFloat16);
  ExpectInvalid(a.Backward(), "dqkv has dtype fp16");
}

TEST(AttentionArgsTest, RefusesUndefinedAndStridedTensors) {
  Args a;
  const Tensor undefined;
  a.lse = undefined;
  ExpectInvalid(a.Forward(), "lse is undefined");
  a = Args();
  a.out = Tensor::Empty({2, 12, 5}, DType::kBFloat16).Transpose(1, 2);
  ExpectInvalid(a.Forward(), "must be contiguous");
}

}  // namespace
}  // namespace trident::cuda
