#ifndef TRIDENT_CORE_TENSOR_COMM_H_
#define TRIDENT_CORE_TENSOR_COMM_H_

// Tensors as communication buffers: a view of a tensor's elements that a
// Communicator reads or writes (core/comm/communicator.h). The tensor must be
// contiguous (make it so with ops::Contiguous, or slice dim 0) and must stay
// alive until the operation's handle has been waited on.

#include "core/comm/communicator.h"
#include "core/tensor.h"

namespace trident {

// All of `tensor`'s elements, writable (all-reduce in place, receive, gather out).
comm::Buffer AsCommBuffer(const Tensor& tensor);

// All of `tensor`'s elements, read-only (send, reduce-scatter in, gather in).
comm::ConstBuffer AsConstCommBuffer(const Tensor& tensor);

}  // namespace trident

#endif  // TRIDENT_CORE_TENSOR_COMM_H_
