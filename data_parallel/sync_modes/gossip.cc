#include "data_parallel/sync_modes/gossip.h"

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"

namespace trident::data_parallel {
namespace {

// Tags name the direction a message travels, so that with n >= 3 the message
// from the left neighbour never pairs with the one from the right.
constexpr int kTagRightward = 0;
constexpr int kTagLeftward = 1;

}  // namespace

std::vector<int> GossipNeighbours(int rank, int size) {
  if (size == 1) return {};
  const int left = (rank + size - 1) % size;
  const int right = (rank + 1) % size;
  if (left == right) return {right};
  return {left, right};
}

int64_t GossipBytesSent(int size, int64_t count) {
  return static_cast<int64_t>(GossipNeighbours(0, size).size()) * count *
         static_cast<int64_t>(sizeof(float));
}

absl::Status GossipRound(comm::Communicator& ring, absl::Span<float> values,
                         std::vector<float>& scratch) {
  const int n = ring.size();
  if (n == 1) return absl::OkStatus();
  const int rank = ring.rank();
  const int64_t count = static_cast<int64_t>(values.size());
  const int left = (rank + n - 1) % n;
  const int right = (rank + 1) % n;
  const comm::ConstBuffer mine(values.data(), count, DType::kFloat32);
  if (n == 2) {
    scratch.resize(values.size());
    const comm::P2POp ops[] = {
        comm::P2POp::Send(mine, right, kTagRightward),
        comm::P2POp::Recv(comm::MakeBuffer(absl::MakeSpan(scratch)), left, kTagRightward)};
    if (absl::Status s = ring.BatchSendRecv(ops); !s.ok()) return s;
    // Both members compute (a + b) / 2 from the same two floats in the same
    // order (lower group rank first), so they end with identical bits.
    for (int64_t i = 0; i < count; ++i) {
      const double a = rank == 0 ? values[i] : scratch[i];
      const double b = rank == 0 ? scratch[i] : values[i];
      values[i] = static_cast<float>((a + b) * 0.5);
    }
    return absl::OkStatus();
  }
  scratch.resize(2 * values.size());
  const absl::Span<float> from_left = absl::MakeSpan(scratch).subspan(0, values.size());
  const absl::Span<float> from_right = absl::MakeSpan(scratch).subspan(values.size());
  // One batch: every member sends both ways and receives both ways at once,
  // which blocking calls in ring order would deadlock.
  const comm::P2POp ops[] = {
      comm::P2POp::Send(mine, right, kTagRightward),
      comm::P2POp::Send(mine, left, kTagLeftward),
      comm::P2POp::Recv(comm::MakeBuffer(from_left), left, kTagRightward),
      comm::P2POp::Recv(comm::MakeBuffer(from_right), right, kTagLeftward)};
  if (absl::Status s = ring.BatchSendRecv(ops); !s.ok()) return s;
  for (int64_t i = 0; i < count; ++i) {
    const double sum = static_cast<double>(from_left[i]) + values[i] + from_right[i];
    values[i] = static_cast<float>(sum / 3.0);
  }
  return absl::OkStatus();
}

}  // namespace trident::data_parallel
