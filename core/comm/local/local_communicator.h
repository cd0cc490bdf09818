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

 private:
  absl::StatusOr<std::unique_ptr<CommHandle>> DoAllReduce(Buffer buffer, ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<CommHandle>> DoReduceScatter(ConstBuffer in, Buffer out,
                                                              ReduceOp op) override;
  absl::StatusOr<std::unique_ptr<CommHandle>> DoAllGather(ConstBuffer in, Buffer out) override;
  absl::StatusOr<std::unique_ptr<CommHandle>> DoBroadcast(Buffer buffer, int root) override;
  absl::StatusOr<std::unique_ptr<CommHandle>> DoBarrier() override;
  // Sends are eager (done when this returns); receives are posted in list
  // order and waited by the handle.
  absl::StatusOr<std::unique_ptr<CommHandle>> DoSendRecv(absl::Span<const P2POp> ops) override;
  absl::StatusOr<std::unique_ptr<Communicator>> DoCreateGroup(absl::Span<const int> ranks,
                                                              absl::string_view name) override;

  // Posts this rank's next collective.
  absl::StatusOr<std::unique_ptr<CommHandle>> Collective(const Contribution& contribution);

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
