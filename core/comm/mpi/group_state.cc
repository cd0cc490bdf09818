#include "core/comm/mpi/group_state.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/comm/mpi/mpi_types.h"

namespace trident::comm::mpi_internal {

namespace {

// Communicators on their way out: each waits for an MPI_Ibarrier on the
// group's control communicator that tells that every member let go of it too.
// Guarded by MpiLock().
struct Retiring {
  MPI_Comm comm;
  MPI_Comm control;
  MPI_Request barrier;
};

std::vector<Retiring>& RetiringComms() {
  static auto* const retiring = new std::vector<Retiring>();
  return *retiring;
}

// The groups whose queue is not empty. Guarded by MpiLock().
absl::flat_hash_set<GroupState*>& ActiveGroups() {
  static auto* const active = new absl::flat_hash_set<GroupState*>();
  return *active;
}

}  // namespace

bool ProgressAllQueues() {
  bool progressed = false;
  // ProgressQueue may empty a queue and unregister it: iterate over a copy.
  const std::vector<GroupState*> active(ActiveGroups().begin(), ActiveGroups().end());
  for (GroupState* group : active) progressed |= group->ProgressQueue();
  return progressed;
}

void GroupState::Enqueue(std::shared_ptr<QueuedCollective> op) {
  queue_.push_back(std::move(op));
  ActiveGroups().insert(this);
  if (queue_.size() == 1) ProgressQueue();
}

void GroupState::FinishHead(absl::Status status) {
  QueuedCollective& head = *queue_.front();
  head.done = true;
  head.status = std::move(status);
  queue_.pop_front();
  if (queue_.empty()) ActiveGroups().erase(this);
}

bool GroupState::ProgressQueue() {
  bool progressed = false;
  while (!queue_.empty()) {
    QueuedCollective& head = *queue_.front();
    if (!head.posted) {
      head.posted = true;
      const int rc = head.post(head);
      if (rc != MPI_SUCCESS) {
        Break(MpiErrorToStatus(rc, absl::StrCat("posting ", CommOpName(head.op), " #",
                                                head.op_number, " on ", description)));
        return progressed;
      }
    }
    while (head.completed_requests < head.requests.size()) {
      int flag = 0;
      const int rc = MPI_Test(&head.requests[head.completed_requests], &flag, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS) {
        Break(MpiErrorToStatus(
            rc, absl::StrCat(CommOpName(head.op), " #", head.op_number, " on ", description)));
        return true;
      }
      if (!flag) return progressed;
      ++head.completed_requests;
      progressed = true;
    }
    if (head.on_success) head.on_success();
    FinishHead(absl::OkStatus());
    progressed = true;
  }
  return progressed;
}

void FreeRetiredComms() {
  std::vector<Retiring>& retiring = RetiringComms();
  for (size_t i = 0; i < retiring.size();) {
    int done = 0;
    if (MPI_Test(&retiring[i].barrier, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done) {
      MPI_Comm_free(&retiring[i].comm);
      MPI_Comm_free(&retiring[i].control);
      retiring[i] = retiring.back();
      retiring.pop_back();
    } else {
      ++i;
    }
  }
}

GroupState::~GroupState() {
  absl::MutexLock lock(&MpiLock());
  ActiveGroups().erase(this);
  if (!MpiIsActive()) return;
  if (board != nullptr) board->ReleaseSlot(my_slot, collectives_issued);
  if (comm == MPI_COMM_NULL) return;
  bool broken = false;
  {
    absl::MutexLock state_lock(&mutex_);
    broken = !broken_.ok();
  }
  // Freeing a communicator while a peer may still send to it is unsafe in Open
  // MPI 4.1: the context id is reused and the stray messages are delivered to
  // the next communicator (a crash in mca_pml_ob1_add_comm). So a broken group,
  // whose abandoned operations may still be in flight, is never freed, and a
  // healthy one only once every member has let go: a barrier on the control
  // communicator (not on `comm`, where it could match a peer's collective),
  // completed by a later call of FreeRetiredComms; one that never completes is
  // never freed.
  if (!broken && control_comm != MPI_COMM_NULL) {
    MPI_Request barrier;
    if (MPI_Ibarrier(control_comm, &barrier) == MPI_SUCCESS) {
      RetiringComms().push_back(Retiring{comm, control_comm, barrier});
    }
  }
  FreeRetiredComms();
}

void GroupState::Break(const absl::Status& cause) {
  {
    absl::MutexLock lock(&mutex_);
    if (broken_.ok()) broken_ = cause;
  }
  // Queued collectives fail with the cause; the head's MPI requests stay
  // posted (MPI cannot cancel a collective) and are abandoned.
  while (!queue_.empty()) FinishHead(cause);
}

absl::Status GroupState::CheckHealthy(CommOp op) {
  absl::MutexLock lock(&mutex_);
  if (broken_.ok()) return absl::OkStatus();
  return BrokenCommunicatorError(description, op, broken_);
}

std::string GroupState::SilentRanksNote() {
  if (board == nullptr) return "";
  const std::vector<int> silent =
      board->SilentRanks(3.5 * ArrivalBoard::kHeartbeatPeriod, settings.arrival_read_grace);
  if (silent.empty()) return "";
  return absl::StrCat("; ", silent.size() == 1 ? "world rank " : "world ranks ",
                      absl::StrJoin(silent, ", "),
                      silent.size() == 1 ? " shows" : " show",
                      " no sign of life (a stopped, frozen or vanished process)");
}

GroupState::Arrivals GroupState::FindMissingArrivals(int64_t op_number) {
  Arrivals result;
  if (board == nullptr) {
    result.details = absl::StrCat(
        "the ranks that did not arrive are unknown: no arrival counters (", board_unavailable, ")");
    return result;
  }
  std::vector<ArrivalSlot> peers;
  std::vector<int> peer_world_ranks;
  for (int r = 0; r < size; ++r) {
    if (r == rank) continue;
    peers.push_back(ArrivalSlot{world_ranks[r], member_slots[r]});
    peer_world_ranks.push_back(world_ranks[r]);
  }
  const std::vector<ArrivalReading> readings = board->Read(peers, settings.arrival_read_grace);
  std::vector<std::string> details;
  for (size_t i = 0; i < readings.size(); ++i) {
    const ArrivalReading& reading = readings[i];
    const int world_rank = peer_world_ranks[i];
    switch (reading.kind) {
      case ArrivalReading::Kind::kNoResponse:
        result.missing.push_back(world_rank);
        details.push_back(absl::StrCat("world rank ", world_rank, " did not respond within ",
                                       absl::FormatDuration(settings.arrival_read_grace)));
        break;
      case ArrivalReading::Kind::kUntracked:
        details.push_back(absl::StrCat("world rank ", world_rank, " has no arrival counter"));
        break;
      case ArrivalReading::Kind::kRead:
        if (reading.tag != tag) {
          result.missing.push_back(world_rank);
          details.push_back(
              absl::StrCat("world rank ", world_rank, " no longer holds this communicator"));
        } else if (reading.left && reading.last_op < op_number) {
          result.missing.push_back(world_rank);
          details.push_back(absl::StrCat("world rank ", world_rank,
                                         " destroyed this communicator after operation #",
                                         reading.last_op));
        } else if (reading.last_op < op_number) {
          result.missing.push_back(world_rank);
          details.push_back(absl::StrCat("world rank ", world_rank, " last entered operation #",
                                         reading.last_op));
        }
        break;
    }
  }
  result.details = absl::StrJoin(details, "; ");
  return result;
}

}  // namespace trident::comm::mpi_internal
