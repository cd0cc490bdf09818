#include "core/tensor_comm.h"

#include <vector>

#include "core/tensor.h"
#include "gtest/gtest.h"

namespace trident {
namespace {

TEST(TensorCommTest, BuffersViewTheTensorsElements) {
  Tensor t = Tensor::FromVector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  comm::Buffer all = AsCommBuffer(t);
  EXPECT_EQ(all.data, t.raw_data());
  EXPECT_EQ(all.count, 6);
  EXPECT_EQ(all.dtype, DType::kFloat32);
  EXPECT_EQ(all.bytes(), 24);
  // A row slice (contiguous) is a buffer of its own elements.
  comm::ConstBuffer rows = AsConstCommBuffer(t.Slice(0, 1, 2));
  EXPECT_EQ(rows.count, 4);
  EXPECT_EQ(static_cast<const float*>(rows.data)[0], 3.0f);
  Tensor ids = Tensor::Zeros({5}, DType::kInt32);
  EXPECT_EQ(AsCommBuffer(ids).dtype, DType::kInt32);
  static_cast<int32_t*>(AsCommBuffer(ids).data)[2] = 7;
  EXPECT_EQ(ids.ToVector<int32_t>()[2], 7);
}

TEST(TensorCommDeathTest, StridedViewsAreRefused) {
  Tensor t = Tensor::Zeros({3, 4}, DType::kFloat32);
  EXPECT_DEATH(AsCommBuffer(t.Slice(1, 0, 2)), "needs a contiguous tensor");
  EXPECT_DEATH(AsCommBuffer(Tensor()), "undefined tensor");
}

}  // namespace
}  // namespace trident
