#ifndef TRIDENT_CORE_COMM_LOCAL_LOCAL_COMMUNICATOR_H_
#define TRIDENT_CORE_COMM_LOCAL_LOCAL_COMMUNICATOR_H_

// One rank's Communicator on a local group (threads of one process). Used by
// one thread at a time, like every Communicator; the group it belongs to is
// shared state (GroupState) that outlives it as long as a handle needs it.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/comm/local/collective_op.h"
#include "core/comm/local/group_state.h"

namespace trident::comm::local_internal {

class LocalCommunicator final : public Communicator {
 public:
  LocalCommunicator(std::shared_ptr<GroupState> group, int rank, std::string name,
                    CommOptions options);

  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  absl::Span<const int> world_ranks() const override { return group_->world_ranks(); }
  const std::string& name() const override { return name_; }
  absl::string_view backend() const override { return "local"; }

  std::unique_ptr<CommHandle> AllReduceAsync(Buffer inout, ReduceOp op) override;
  std::unique_ptr<CommHandle> ReduceScatterAsync(ConstBuffer in, Buffer out,
                                                 ReduceOp op) override;
  std::unique_ptr<CommHandle> AllGatherAsync(ConstBuffer in, Buffer out) override;
  std::unique_ptr<CommHandle> BroadcastAsync(Buffer buffer, int root) override;
  std::unique_ptr<CommHandle> SendAsync(ConstBuffer buffer, int peer, int tag) override;
  std::unique_ptr<CommHandle> RecvAsync(Buffer buffer, int peer, int tag) override;
  std::unique_ptr<CommHandle> BarrierAsync() override;

  absl::StatusOr<std::unique_ptr<Communicator>> CreateGroup(absl::Span<const int> ranks,
                                                            absl::string_view name) override;

 private:
  // Posts this rank's next collective and counts `payload_bytes` on success.
  std::unique_ptr<CommHandle> Collective(const Contribution& contribution, int64_t payload_bytes);

  std::shared_ptr<GroupState> group_;
  const int rank_;
  const std::string name_;
  int64_t next_seq_ = 0;
  // How many groups with each member list this rank created, so that repeated
  // CreateGroup calls with the same members make distinct groups.
  std::map<std::vector<int>, int64_t> created_;
};

}  // namespace trident::comm::local_internal

#endif  // TRIDENT_CORE_COMM_LOCAL_LOCAL_COMMUNICATOR_H_
