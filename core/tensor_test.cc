#include "core/tensor.h"

#include <cstdint>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace trident {
namespace {

std::vector<float> Iota(int n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

TEST(TensorTest, UndefinedByDefault) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_EQ(t.DebugString(), "undefined");
}

TEST(TensorTest, EmptyHasShapeStridesAndDtype) {
  Tensor t = Tensor::Empty({2, 3, 4}, DType::kFloat32);
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.ndim(), 3);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_EQ(t.dim(-1), 4);
  EXPECT_EQ(t.dim(0), 2);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.device(), Device::Cpu());
  EXPECT_EQ(t.DebugString(), "fp32[2, 3, 4] cpu");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % Allocator::kAlignment, 0u);
}

TEST(TensorTest, ScalarAndZeroSizedTensors) {
  Tensor s = Tensor::FromVector<float>({2.5f}, {});
  EXPECT_EQ(s.ndim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.Item<float>(), 2.5f);
  Tensor z = Tensor::Zeros({0, 5}, DType::kFloat32);
  EXPECT_EQ(z.numel(), 0);
  EXPECT_TRUE(z.ToVector<float>().empty());
}

TEST(TensorTest, ZerosAndRoundTrip) {
  Tensor z = Tensor::Zeros({3, 2}, DType::kInt32);
  EXPECT_EQ(z.ToVector<int32_t>(), std::vector<int32_t>(6, 0));
  std::vector<int32_t> values = {5, -1, 7, 2, 0, 9};
  z.CopyFrom(values);
  EXPECT_EQ(z.ToVector<int32_t>(), values);
  Tensor f = Tensor::FromVector(Iota(6), {2, 3});
  EXPECT_EQ(f.ToVector<float>(), Iota(6));
  EXPECT_EQ(f.data<float>()[4], 4.0f);
}

TEST(TensorTest, SliceOfDimZeroIsContiguousAndSharesStorage) {
  Tensor t = Tensor::FromVector(Iota(12), {4, 3});
  Tensor rows = t.Slice(0, 1, 2);
  EXPECT_TRUE(rows.is_contiguous());
  EXPECT_TRUE(rows.SharesStorageWith(t));
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  EXPECT_EQ(rows.ToVector<float>(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
  rows.data<float>()[0] = -1.0f;  // Writes through to the parent.
  EXPECT_EQ(t.ToVector<float>()[3], -1.0f);
}

TEST(TensorTest, SliceOfInnerDimIsStrided) {
  Tensor t = Tensor::FromVector(Iota(12), {3, 4});
  Tensor cols = t.Slice(1, 1, 2);
  EXPECT_FALSE(cols.is_contiguous());
  EXPECT_EQ(cols.shape(), (Shape{3, 2}));
  EXPECT_EQ(cols.strides(), (Shape{4, 1}));
  EXPECT_EQ(cols.ToVector<float>(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(cols.DebugString(), "fp32[3, 2] cpu (strided)");
  // A slice of one column of a single row is contiguous again.
  EXPECT_TRUE(t.Slice(0, 2, 1).Slice(1, 1, 2).is_contiguous());
}

TEST(TensorTest, SelectTransposeReshapeAndFlat) {
  Tensor t = Tensor::FromVector(Iota(24), {2, 3, 4});
  Tensor b1 = t.Select(0, 1);
  EXPECT_EQ(b1.shape(), (Shape{3, 4}));
  EXPECT_EQ(b1.ToVector<float>()[0], 12.0f);
  Tensor col = t.Select(2, 3);
  EXPECT_EQ(col.ToVector<float>(), (std::vector<float>{3, 7, 11, 15, 19, 23}));

  Tensor m = Tensor::FromVector(Iota(6), {2, 3});
  Tensor mt = m.Transpose(0, 1);
  EXPECT_EQ(mt.shape(), (Shape{3, 2}));
  EXPECT_FALSE(mt.is_contiguous());
  EXPECT_EQ(mt.ToVector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));

  Tensor r = t.Reshape({4, -1});
  EXPECT_EQ(r.shape(), (Shape{4, 6}));
  EXPECT_TRUE(r.SharesStorageWith(t));
  EXPECT_EQ(t.Flatten().shape(), (Shape{24}));

  Tensor flat = t.Flat(5, 4);
  EXPECT_EQ(flat.ToVector<float>(), (std::vector<float>{5, 6, 7, 8}));
  EXPECT_EQ(flat.storage_offset_bytes(), 20);
}

TEST(TensorTest, StorageReturnsToItsAllocatorWhenTheLastViewGoes) {
  auto allocator = CpuAllocator::Create("activations");
  Tensor view;
  {
    Tensor t = Tensor::Empty({16, 16}, DType::kFloat32, allocator);
    EXPECT_EQ(allocator->bytes_in_use(), 1024);
    view = t.Slice(0, 4, 4);
  }
  EXPECT_EQ(allocator->bytes_in_use(), 1024);  // The view keeps it alive.
  view = Tensor();
  EXPECT_EQ(allocator->bytes_in_use(), 0);
  EXPECT_EQ(allocator->peak_bytes(), 1024);
}

TEST(TensorTest, FromExternalIsNotFreed) {
  std::vector<int32_t> tokens = {3, 1, 4, 1, 5, 9};
  auto allocator = DefaultAllocator(Device::Cpu());
  const int64_t before = allocator->bytes_in_use();
  {
    Tensor t = Tensor::FromExternal(tokens.data(), {2, 3}, DType::kInt32);
    EXPECT_EQ(t.data<int32_t>(), tokens.data());
    EXPECT_EQ(t.Select(0, 1).ToVector<int32_t>(), (std::vector<int32_t>{1, 5, 9}));
  }
  EXPECT_EQ(allocator->bytes_in_use(), before);
  EXPECT_EQ(tokens[5], 9);
}

TEST(TensorDeathTest, MisuseAbortsWithAMessage) {
  Tensor t = Tensor::Empty({2, 3}, DType::kFloat32);
  EXPECT_DEATH(t.data<int32_t>(), "accessed as int32");
  EXPECT_DEATH(t.Slice(1, 2, 2), "Slice\\(dim=1, start=2, length=2\\) of fp32\\[2, 3\\]");
  EXPECT_DEATH(t.Reshape({4, 2}), "changes the element count");
  EXPECT_DEATH(t.Slice(1, 0, 2).Reshape({4}), "Reshape of a strided view");
  EXPECT_DEATH(t.dim(2), "dim 2 is out of range");
  EXPECT_DEATH(Tensor::Empty({2, -1}, DType::kFloat32), "negative dim");
  EXPECT_DEATH(t.CopyFrom(std::vector<float>(5)), "element count");
}

}  // namespace
}  // namespace trident
