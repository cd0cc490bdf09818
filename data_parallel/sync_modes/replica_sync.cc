#include "data_parallel/sync_modes/replica_sync.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "data_parallel/sync_modes/gossip.h"

namespace trident::data_parallel {

bool ReplicaSync::MixesAfter(int64_t step) const {
  switch (options_.mode) {
    case DpSyncMode::kSync:
      return false;
    case DpSyncMode::kLocalSgd:
      return (step + 1) % options_.local_sgd_steps == 0;
    case DpSyncMode::kGossip:
      return true;
  }
  return false;
}

void ReplicaSync::Pack() {
  flat_.clear();
  for (const Tensor& t : values_) {
    const float* v = t.data<float>();
    flat_.insert(flat_.end(), v, v + t.numel());
  }
}

void ReplicaSync::Unpack() {
  int64_t offset = 0;
  for (Tensor& t : values_) {
    std::copy_n(flat_.data() + offset, t.numel(), t.data<float>());
    offset += t.numel();
  }
}

absl::Status ReplicaSync::AfterStep(comm::Communicator& dp, int64_t step) {
  if (dp.size() == 1 || !MixesAfter(step)) return absl::OkStatus();
  for (size_t i = 0; i < values_.size(); ++i) {
    if (values_[i].dtype() != DType::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat("dp_sync mixes fp32 values; value ", i,
                                                     " holds ", DTypeName(values_[i].dtype())));
    }
  }
  Pack();
  if (options_.mode == DpSyncMode::kGossip) {
    if (absl::Status s = GossipRound(dp, absl::MakeSpan(flat_), scratch_); !s.ok()) return s;
  } else {
    // The sum, then one division by n: every replica ends with the same bits
    // (every algorithm hands all members the same sum).
    comm::Buffer buffer = comm::MakeBuffer(absl::MakeSpan(flat_));
    if (absl::Status s = comm::AllReduceByAlgorithmAsync(dp, buffer, comm::ReduceOp::kSum,
                                                         options_.algorithm)
                             ->Wait();
        !s.ok()) {
      return s;
    }
    comm::DivideInPlace(buffer.data, buffer.count, buffer.dtype, dp.size());
  }
  Unpack();
  return absl::OkStatus();
}

}  // namespace trident::data_parallel
