#include "core/comm/mpi/mpi_communicator.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/comm/mpi/arrival_board.h"
#include "core/comm/mpi/group_state.h"
#include "core/comm/mpi/mpi_handle.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/comm/mpi/mpi_types.h"
#include "core/status_macros.h"

namespace trident::comm {

using mpi_internal::ArrivalBoard;
using mpi_internal::GroupState;
using mpi_internal::MpiDatatype;
using mpi_internal::MpiErrorToStatus;
using mpi_internal::MpiReduceOp;

namespace {

// Calls `fn(offset, length)` over [0, count) in pieces of at most `limit`
// elements; once with length 0 when `count` is 0, because the members of a
// collective must still meet.
template <typename Fn>
int ForEachPiece(int64_t count, int64_t limit, Fn fn) {
  if (count == 0) return fn(int64_t{0}, 0);
  for (int64_t offset = 0; offset < count; offset += limit) {
    const int rc = fn(offset, static_cast<int>(std::min(limit, count - offset)));
    if (rc != MPI_SUCCESS) return rc;
  }
  return MPI_SUCCESS;
}

char* At(void* data, int64_t elements, DType dtype) {
  return static_cast<char*>(data) + elements * static_cast<int64_t>(DTypeSize(dtype));
}
const char* At(const void* data, int64_t elements, DType dtype) {
  return static_cast<const char*>(data) + elements * static_cast<int64_t>(DTypeSize(dtype));
}

bool Overlap(const void* a, int64_t a_bytes, const void* b, int64_t b_bytes) {
  if (a_bytes == 0 || b_bytes == 0) return false;
  const char* pa = static_cast<const char*>(a);
  const char* pb = static_cast<const char*>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

// A fingerprint of a group's world ranks and name that every process computes
// alike (FNV-1a; absl::Hash is seeded differently in each process).
uint64_t GroupFingerprint(absl::Span<const int> member_world_ranks, absl::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull;
  auto mix = [&hash](const void* data, size_t bytes) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < bytes; ++i) {
      hash ^= p[i];
      hash *= 0x100000001b3ull;
    }
  };
  for (int r : member_world_ranks) mix(&r, sizeof(r));
  mix(name.data(), name.size());
  return hash;
}

int MaxTag() {
  void* value = nullptr;
  int flag = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &value, &flag);
  return flag ? *static_cast<int*>(value) : 32767;
}

// Distinguishes the groups one process proposes (see CreateGroup).
std::atomic<int64_t> group_serial{0};

}  // namespace

absl::StatusOr<std::unique_ptr<MpiCommunicator>> MpiCommunicator::CreateWorld(
    CommOptions options, MpiSettings settings) {
  if (settings.max_count_per_call < 1 ||
      settings.max_count_per_call > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("MpiSettings.max_count_per_call = ", settings.max_count_per_call,
                     " must lie in [1, ", std::numeric_limits<int>::max(), "]"));
  }
  if (settings.arrival_read_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MpiSettings.arrival_read_grace = ", absl::FormatDuration(settings.arrival_read_grace),
        " is negative"));
  }
  auto state = std::make_shared<GroupState>();
  {
    absl::MutexLock lock(&MpiLock());
    if (!MpiIsActive()) {
      return absl::FailedPreconditionError(
          "MpiCommunicator::CreateWorld needs MPI initialised: create an MpiRuntime first");
    }
    int world_rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    // Every process takes part in what follows (duplicates, the arrival
    // board's window and barrier), and MPI cannot time it out.
    mpi_internal::BlockingCallWatchdog watchdog(options.timeout, world_rank,
                                                "creating the world communicator");
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &state->comm);
    if (rc != MPI_SUCCESS) return MpiErrorToStatus(rc, "MPI_Comm_dup(MPI_COMM_WORLD)");
    MPI_Comm_set_errhandler(state->comm, MPI_ERRORS_RETURN);
    rc = MPI_Comm_dup(state->comm, &state->control_comm);
    if (rc != MPI_SUCCESS) return MpiErrorToStatus(rc, "MPI_Comm_dup(world)");
    MPI_Comm_rank(state->comm, &state->rank);
    MPI_Comm_size(state->comm, &state->size);
    state->max_tag = MaxTag();
    absl::StatusOr<std::shared_ptr<ArrivalBoard>> board = ArrivalBoard::Create(state->comm);
    if (board.ok()) {
      state->board = *std::move(board);
      state->my_slot = ArrivalBoard::kWorldSlot;
      state->member_slots.assign(state->size, ArrivalBoard::kWorldSlot);
      state->tag = ArrivalBoard::kWorldTag;
    } else {
      state->board_unavailable = std::string(board.status().message());
    }
  }
  state->world_ranks.resize(state->size);
  for (int r = 0; r < state->size; ++r) state->world_ranks[r] = r;
  state->name = "world";
  state->settings = settings;
  return std::unique_ptr<MpiCommunicator>(new MpiCommunicator(options, std::move(state)));
}

MpiCommunicator::MpiCommunicator(CommOptions options, std::shared_ptr<GroupState> state)
    : Communicator(options), state_(std::move(state)) {
  state_->description = DescribeGroup(*this);
}

MpiCommunicator::~MpiCommunicator() = default;

int MpiCommunicator::rank() const { return state_->rank; }
int MpiCommunicator::size() const { return state_->size; }
absl::Span<const int> MpiCommunicator::world_ranks() const { return state_->world_ranks; }
const std::string& MpiCommunicator::name() const { return state_->name; }
bool MpiCommunicator::tracks_arrivals() const { return state_->board != nullptr; }
MPI_Comm MpiCommunicator::mpi_comm() const { return state_->comm; }

namespace {

using mpi_internal::CollectiveHandle;
using mpi_internal::PointToPointHandle;
using mpi_internal::QueuedCollective;

// Queues one collective: checks the group is healthy, announces the
// collective on the arrival board, and appends it to the group's queue (which
// posts it through `post` once its predecessors are done).
absl::StatusOr<std::unique_ptr<CommHandle>> IssueCollective(
    const std::shared_ptr<GroupState>& state, absl::Duration timeout, CommOp op,
    std::function<int(QueuedCollective&)> post, std::function<void()> on_success = nullptr,
    std::unique_ptr<char[]> scratch = nullptr) {
  RETURN_IF_ERROR(state->CheckHealthy(op));
  auto queued = std::make_shared<QueuedCollective>();
  queued->op = op;
  queued->op_number = ++state->collectives_issued;
  queued->post = std::move(post);
  queued->on_success = std::move(on_success);
  queued->scratch = std::move(scratch);
  {
    absl::MutexLock lock(&MpiLock());
    if (state->board != nullptr) state->board->Announce(state->my_slot, queued->op_number);
    state->Enqueue(queued);
  }
  return std::make_unique<CollectiveHandle>(state, std::move(queued), timeout);
}

// Adds a posted request to `op` when posting succeeded; passes the code on.
// `request` is read after `rc` was computed (by reference: the call that fills
// it is another argument of the same expression).
int Track(QueuedCollective& op, int rc, const MPI_Request& request) {
  if (rc == MPI_SUCCESS) op.requests.push_back(request);
  return rc;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CommHandle>> MpiCommunicator::DoAllReduce(Buffer buffer,
                                                                         ReduceOp op) {
  const MPI_Comm comm = state_->comm;
  const int64_t limit = state_->settings.max_count_per_call;
  const int group_size = size();
  std::function<void()> finish;
  if (op == ReduceOp::kAvg) {
    finish = [buffer, group_size] {
      DivideInPlace(buffer.data, buffer.count, buffer.dtype, group_size);
    };
  }
  return IssueCollective(
      state_, timeout(), CommOp::kAllReduce,
      [buffer, op, comm, limit](QueuedCollective& queued) {
        const MPI_Datatype type = MpiDatatype(buffer.dtype);
        const MPI_Op mpi_op = MpiReduceOp(buffer.dtype, op);
        return ForEachPiece(buffer.count, limit, [&](int64_t offset, int length) {
          MPI_Request request;
          return Track(queued,
                       MPI_Iallreduce(MPI_IN_PLACE, At(buffer.data, offset, buffer.dtype), length,
                                      type, mpi_op, comm, &request),
                       request);
        });
      },
      std::move(finish));
}

absl::StatusOr<std::unique_ptr<CommHandle>> MpiCommunicator::DoReduceScatter(ConstBuffer in,
                                                                             Buffer out,
                                                                             ReduceOp op) {
  const MPI_Comm comm = state_->comm;
  const int64_t limit = state_->settings.max_count_per_call;
  const int group_size = size();
  const int my_rank = rank();
  // MPI forbids overlapping send and receive buffers: reduce into scratch
  // memory and copy out afterwards when the caller's buffers overlap.
  std::unique_ptr<char[]> scratch;
  void* target = out.data;
  if (Overlap(in.data, in.bytes(), out.data, out.bytes())) {
    scratch.reset(new char[out.bytes()]);
    target = scratch.get();
  }
  std::function<void()> finish;
  const bool copy_out = target != out.data;
  if (op == ReduceOp::kAvg || copy_out) {
    finish = [out, target, copy_out, average = op == ReduceOp::kAvg, group_size] {
      if (copy_out) std::memcpy(out.data, target, out.bytes());
      if (average) DivideInPlace(out.data, out.count, out.dtype, group_size);
    };
  }
  return IssueCollective(
      state_, timeout(), CommOp::kReduceScatter,
      [in, out, target, op, comm, limit, group_size, my_rank](QueuedCollective& queued) {
        const MPI_Datatype type = MpiDatatype(out.dtype);
        const MPI_Op mpi_op = MpiReduceOp(out.dtype, op);
        const int64_t slice = out.count;
        if (slice <= limit) {
          MPI_Request request;
          return Track(queued,
                       MPI_Ireduce_scatter_block(in.data, target, static_cast<int>(slice), type,
                                                 mpi_op, comm, &request),
                       request);
        }
        // Slices too large for one call: one reduction per member, in pieces.
        int rc = MPI_SUCCESS;
        for (int root = 0; root < group_size && rc == MPI_SUCCESS; ++root) {
          rc = ForEachPiece(slice, limit, [&](int64_t offset, int length) {
            MPI_Request request;
            return Track(queued,
                         MPI_Ireduce(At(in.data, root * slice + offset, in.dtype),
                                     root == my_rank ? At(target, offset, out.dtype) : nullptr,
                                     length, type, mpi_op, root, comm, &request),
                         request);
          });
        }
        return rc;
      },
      std::move(finish), std::move(scratch));
}

absl::StatusOr<std::unique_ptr<CommHandle>> MpiCommunicator::DoAllGather(ConstBuffer in,
                                                                         Buffer out) {
  const int my_rank = rank();
  const int group_size = size();
  // The one overlap MPI allows: the input is this rank's own slice of the
  // output (MPI_IN_PLACE).
  const bool in_place = in.count > 0 && in.data == At(out.data, my_rank * in.count, in.dtype);
  if (!in_place && Overlap(in.data, in.bytes(), out.data, out.bytes())) {
    return absl::InvalidArgumentError(
        absl::StrCat("all-gather on ", DescribeGroup(*this),
                     ": the input overlaps the output other than as this rank's own slice (rank ",
                     my_rank, " at element ", my_rank * in.count, ")"));
  }
  const MPI_Comm comm = state_->comm;
  const int64_t limit = state_->settings.max_count_per_call;
  return IssueCollective(
      state_, timeout(), CommOp::kAllGather,
      [in, out, in_place, comm, limit, group_size, my_rank](QueuedCollective& queued) {
        const MPI_Datatype type = MpiDatatype(in.dtype);
        const int64_t slice = in.count;
        if (slice <= limit) {
          MPI_Request request;
          return Track(
              queued,
              MPI_Iallgather(in_place ? MPI_IN_PLACE : in.data, static_cast<int>(slice), type,
                             out.data, static_cast<int>(slice), type, comm, &request),
              request);
        }
        // Slices too large for one call: every member broadcasts its slice, in
        // pieces.
        if (!in_place) std::memcpy(At(out.data, my_rank * slice, in.dtype), in.data, in.bytes());
        int rc = MPI_SUCCESS;
        for (int root = 0; root < group_size && rc == MPI_SUCCESS; ++root) {
          rc = ForEachPiece(slice, limit, [&](int64_t offset, int length) {
            MPI_Request request;
            return Track(queued,
                         MPI_Ibcast(At(out.data, root * slice + offset, in.dtype), length, type,
                                    root, comm, &request),
                         request);
          });
        }
        return rc;
      });
}

absl::StatusOr<std::unique_ptr<CommHandle>> MpiCommunicator::DoBroadcast(Buffer buffer, int root) {
  const MPI_Comm comm = state_->comm;
  const int64_t limit = state_->settings.max_count_per_call;
  return IssueCollective(
      state_, timeout(), CommOp::kBroadcast, [buffer, root, comm, limit](QueuedCollective& queued) {
        const MPI_Datatype type = MpiDatatype(buffer.dtype);
        return ForEachPiece(buffer.count, limit, [&](int64_t offset, int length) {
          MPI_Request request;
          return Track(
              queued,
              MPI_Ibcast(At(buffer.data, offset, buffer.dtype), length, type, root, comm, &request),
              request);
        });
      });
}

absl::StatusOr<std::unique_ptr<CommHandle>> MpiCommunicator::DoBarrier() {
  const MPI_Comm comm = state_->comm;
  return IssueCollective(state_, timeout(), CommOp::kBarrier, [comm](QueuedCollective& queued) {
    MPI_Request request;
    return Track(queued, MPI_Ibarrier(comm, &request), request);
  });
}

absl::StatusOr<std::unique_ptr<CommHandle>> MpiCommunicator::DoSendRecv(
    absl::Span<const P2POp> ops) {
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].tag > state_->max_tag) {
      return absl::InvalidArgumentError(absl::StrCat(DescribeP2POp(*this, ops, i), ": tag ",
                                                     ops[i].tag,
                                                     " exceeds MPI_TAG_UB = ", state_->max_tag));
    }
  }
  RETURN_IF_ERROR(state_->CheckHealthy(ops.front().op));
  auto handle = std::make_unique<PointToPointHandle>(state_, timeout());
  absl::MutexLock lock(&MpiLock());
  for (const P2POp& op : ops) {
    const bool send = op.op == CommOp::kSend;
    const ConstBuffer buffer = op.buffer();
    const MPI_Datatype type = MpiDatatype(buffer.dtype);
    handle->BeginOp(op.op, op.peer, op.tag);
    const int rc = ForEachPiece(
        buffer.count, state_->settings.max_count_per_call, [&](int64_t offset, int length) {
          MPI_Request request;
          if (send) {
            const int rc = MPI_Isend(At(buffer.data, offset, buffer.dtype), length, type, op.peer,
                                     op.tag, state_->comm, &request);
            if (rc == MPI_SUCCESS) handle->AddRequest(request);
            return rc;
          }
          const int rc = MPI_Irecv(At(op.recv_buffer.data, offset, buffer.dtype), length, type,
                                   op.peer, op.tag, state_->comm, &request);
          if (rc == MPI_SUCCESS) handle->AddRequest(request, length, type);
          return rc;
        });
    if (rc != MPI_SUCCESS) {
      // Requests already posted are abandoned to MPI (as after a timeout).
      handle->Abandon();
      return MpiErrorToStatus(
          rc, absl::StrCat("posting ", CommOpName(op.op), " on ", state_->description));
    }
  }
  return std::unique_ptr<CommHandle>(std::move(handle));
}

absl::StatusOr<std::unique_ptr<Communicator>> MpiCommunicator::DoCreateGroup(
    absl::Span<const int> ranks, absl::string_view name) {
  // Group creation is not an operation of the interface's list; kBarrier names
  // the kind of meeting it is in the broken-communicator message.
  RETURN_IF_ERROR(state_->CheckHealthy(CommOp::kBarrier));
  const std::string creating =
      absl::StrCat("creating group '", name, "' from ", DescribeGroup(*this));
  auto child = std::make_shared<GroupState>();
  child->name = std::string(name);
  child->settings = state_->settings;
  child->max_tag = state_->max_tag;
  child->board = state_->board;
  child->board_unavailable = state_->board_unavailable;
  child->world_ranks.reserve(ranks.size());
  for (int r : ranks) child->world_ranks.push_back(state_->world_ranks[r]);
  child->size = static_cast<int>(ranks.size());
  child->rank = static_cast<int>(std::find(ranks.begin(), ranks.end(), rank()) - ranks.begin());
  const uint64_t fingerprint = GroupFingerprint(child->world_ranks, name);
  // MPI_Comm_create_group's tag must agree among the members, or the call
  // hangs: it depends on the rank list only, so that members disagreeing on the
  // name still meet and are told below. Different groups get different tags,
  // so that overlapping creations in flight do not match each other's messages.
  const int creation_tag =
      static_cast<int>(GroupFingerprint(child->world_ranks, "") %
                       static_cast<uint64_t>(std::min(state_->max_tag, 32767) + 1));

  // What each member tells the others: its arrival slot, its proposal for the
  // group's board tag (member 0's wins), and the group's fingerprint. On the
  // heap: a timed-out exchange abandons them to MPI.
  const int64_t n = child->size;
  auto exchange = std::make_unique<int64_t[]>(3 * (n + 1));
  int64_t* const mine = &exchange[3 * n];
  int64_t* const all = exchange.get();
  mine[0] = -1;
  mine[1] =
      (static_cast<int64_t>(state_->world_ranks[rank()]) + 1) << 32 | (++group_serial & 0xffffffff);
  mine[2] = static_cast<int64_t>(fingerprint & 0x7fffffffffffffffull);
  MPI_Request request = MPI_REQUEST_NULL;
  {
    absl::MutexLock lock(&MpiLock());
    mpi_internal::FreeRetiredComms();
    MPI_Group parent_group;
    MPI_Group group;
    MPI_Comm_group(state_->comm, &parent_group);
    MPI_Group_incl(parent_group, static_cast<int>(ranks.size()), ranks.data(), &group);
    int rc = MPI_SUCCESS;
    int dup_rc = MPI_SUCCESS;
    {
      mpi_internal::BlockingCallWatchdog watchdog(timeout(), state_->world_ranks[rank()],
                                                  creating);
      rc = MPI_Comm_create_group(state_->comm, group, creation_tag, &child->comm);
      if (rc == MPI_SUCCESS) {
        MPI_Comm_set_errhandler(child->comm, MPI_ERRORS_RETURN);
        dup_rc = MPI_Comm_dup(child->comm, &child->control_comm);
      }
    }
    MPI_Group_free(&group);
    MPI_Group_free(&parent_group);
    if (rc != MPI_SUCCESS) return MpiErrorToStatus(rc, creating);
    if (dup_rc != MPI_SUCCESS) return MpiErrorToStatus(dup_rc, creating);
    if (child->board != nullptr) mine[0] = child->board->AcquireSlot();
    child->my_slot = mine[0];
    const int gather_rc =
        MPI_Iallgather(mine, 3, MPI_INT64_T, all, 3, MPI_INT64_T, child->control_comm, &request);
    if (gather_rc != MPI_SUCCESS) return MpiErrorToStatus(gather_rc, creating);
  }
  absl::Status gathered =
      mpi_internal::PollRequests(absl::MakeSpan(&request, 1), {}, timeout(), creating);
  if (absl::IsDeadlineExceeded(gathered)) {
    exchange.release();  // Still MPI's: the exchange may complete late.
    absl::Status status = absl::DeadlineExceededError(
        absl::StrCat(creating, ": the members did not exchange their arrival slots within ",
                     absl::FormatDuration(timeout())));
    child->Break(status);  // Never free a communicator with traffic in flight.
    return status;
  }
  if (!gathered.ok()) {
    child->Break(gathered);
    return gathered;
  }
  std::vector<int> disagreeing;
  for (int64_t i = 0; i < n; ++i) {
    if (all[3 * i + 2] != mine[2]) disagreeing.push_back(child->world_ranks[i]);
  }
  if (!disagreeing.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        creating, " with world ranks [", absl::StrJoin(child->world_ranks, ", "), "]: world ranks ",
        absl::StrJoin(disagreeing, ", "),
        " passed a different rank list or name (members must create their groups in the same "
        "order with the same arguments)"));
  }
  child->tag = all[1];
  child->member_slots.resize(n);
  for (int64_t i = 0; i < n; ++i) child->member_slots[i] = all[3 * i];
  if (child->board != nullptr) {
    absl::MutexLock lock(&MpiLock());
    child->board->SetTag(child->my_slot, child->tag);
  }
  return std::unique_ptr<Communicator>(new MpiCommunicator(options(), std::move(child)));
}

}  // namespace trident::comm
