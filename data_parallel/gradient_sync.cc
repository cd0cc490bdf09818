#include "data_parallel/gradient_sync.h"

#include <memory>
#include <vector>

#include "core/tensor_comm.h"

namespace trident::data_parallel {

absl::Status AllReduceGradients(const ParameterList& params, comm::Communicator* dp) {
  if (dp == nullptr || dp->size() == 1) return absl::OkStatus();
  // Issue every all-reduce, then wait: the backend may overlap them.
  std::vector<std::unique_ptr<comm::CommHandle>> pending;
  pending.reserve(params.size());
  for (Parameter* p : params) {
    pending.push_back(dp->AllReduceAsync(AsCommBuffer(p->grad), comm::ReduceOp::kSum));
  }
  absl::Status status;
  for (auto& handle : pending) status.Update(handle->Wait());
  return status;
}

}  // namespace trident::data_parallel
