#include "core/tensor_comm.h"

#include "core/check.h"

namespace trident {

comm::Buffer AsCommBuffer(const Tensor& tensor) {
  TRIDENT_CHECK(tensor.defined()) << "AsCommBuffer of an undefined tensor";
  TRIDENT_CHECK(tensor.is_contiguous())
      << "AsCommBuffer needs a contiguous tensor, got " << tensor.DebugString();
  return comm::Buffer{tensor.raw_data(), tensor.numel(), tensor.dtype()};
}

comm::ConstBuffer AsConstCommBuffer(const Tensor& tensor) {
  return comm::ConstBuffer(AsCommBuffer(tensor));
}

}  // namespace trident
