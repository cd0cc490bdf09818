#include "core/comm/mpi/arrival_board.h"

#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/comm/mpi/mpi_types.h"

namespace trident::comm::mpi_internal {
namespace {

// Each slot holds two int64 values: the communicator's tag, then the number of
// the last collective entered.
constexpr int64_t kValuesPerSlot = 2;
// After the slots: the heartbeat counter.
constexpr int64_t kHeartbeatIndex = ArrivalBoard::kSlots * kValuesPerSlot;
constexpr int64_t kTableValues = kHeartbeatIndex + 1;

}  // namespace

absl::StatusOr<std::shared_ptr<ArrivalBoard>> ArrivalBoard::Create(MPI_Comm world_comm) {
  int world_rank = 0;
  int world_size = 1;
  MPI_Comm_rank(world_comm, &world_rank);
  MPI_Comm_size(world_comm, &world_size);
  MPI_Info info;
  MPI_Info_create(&info);
  // Writers only replace, readers only fetch: lets MPI use plain atomics.
  MPI_Info_set(info, "accumulate_ops", "same_op_no_op");
  MPI_Info_set(info, "same_size", "true");
  int64_t* base = nullptr;
  MPI_Win window = MPI_WIN_NULL;
  const int rc = MPI_Win_allocate(kTableValues * sizeof(int64_t), sizeof(int64_t), info,
                                  world_comm, &base, &window);
  MPI_Info_free(&info);
  if (rc != MPI_SUCCESS) return MpiErrorToStatus(rc, "MPI_Win_allocate for arrival counters");
  MPI_Win_set_errhandler(window, MPI_ERRORS_RETURN);
  std::memset(base, 0, kTableValues * sizeof(int64_t));
  MPI_Win_lock_all(MPI_MODE_NOCHECK, window);
  MPI_Win_sync(window);
  // Nobody reads a table before its owner has cleared it.
  MPI_Barrier(world_comm);
  std::shared_ptr<ArrivalBoard> board(new ArrivalBoard(window, world_rank, world_size));
  board->SetTag(kWorldSlot, kWorldTag);
  return board;
}

ArrivalBoard::ArrivalBoard(MPI_Win window, int world_rank, int world_size)
    : window_(window), world_rank_(world_rank), world_size_(world_size) {
  {
    absl::MutexLock lock(&slots_mutex_);
    for (int64_t slot = kWorldSlot + 1; slot < kSlots; ++slot) free_slots_.push_back(slot);
  }
  if (world_size_ > 1) heartbeat_ = std::thread([this] { Beat(); });
}

ArrivalBoard::~ArrivalBoard() {
  {
    absl::MutexLock lock(&heartbeat_mutex_);
    stopping_ = true;
  }
  if (heartbeat_.joinable()) heartbeat_.join();
}

void ArrivalBoard::Beat() {
  int64_t beats = 0;
  absl::MutexLock lock(&heartbeat_mutex_);
  while (!heartbeat_mutex_.AwaitWithTimeout(absl::Condition(&stopping_), kHeartbeatPeriod)) {
    heartbeat_mutex_.Unlock();
    {
      absl::MutexLock mpi_lock(&MpiLock());
      // After MPI_Finalize the window is gone (the board may outlive MPI).
      if (MpiIsActive()) Store(kHeartbeatIndex, ++beats);
    }
    heartbeat_mutex_.Lock();
  }
}

int64_t ArrivalBoard::AcquireSlot() {
  absl::MutexLock lock(&slots_mutex_);
  if (free_slots_.empty()) return -1;
  const int64_t slot = free_slots_.front();
  free_slots_.pop_front();
  return slot;
}

void ArrivalBoard::ReleaseSlot(int64_t slot, int64_t last_op) {
  if (slot < 0) return;
  Store(slot * kValuesPerSlot + 1, -(last_op + 1));
  if (slot == kWorldSlot) return;  // Never handed out again.
  absl::MutexLock lock(&slots_mutex_);
  free_slots_.push_back(slot);
}

void ArrivalBoard::SetTag(int64_t slot, int64_t tag) {
  if (slot < 0) return;
  Store(slot * kValuesPerSlot, tag);
}

void ArrivalBoard::Announce(int64_t slot, int64_t op_number) {
  if (slot < 0) return;
  Store(slot * kValuesPerSlot + 1, op_number);
}

void ArrivalBoard::Store(int64_t index, int64_t value) {
  // An atomic replace so that a concurrent reader never sees a torn value.
  MPI_Accumulate(&value, 1, MPI_INT64_T, world_rank_, index, 1, MPI_INT64_T, MPI_REPLACE, window_);
  MPI_Win_flush(world_rank_, window_);
}

std::vector<int64_t> ArrivalBoard::Fetch(absl::Span<const Target> targets, int64_t count,
                                         absl::Duration grace, std::vector<bool>* answered) {
  const size_t n = targets.size();
  answered->assign(n, false);
  // Results land here; the buffer is never resized while requests are pending.
  // Requests still pending after the grace period are abandoned with their
  // buffers, which is why these live on the heap and are leaked in that case.
  // The last `count` values are the (ignored) origin buffer of the fetches.
  auto* values = new int64_t[(n + 1) * count]();
  int64_t* const ignored_origin = &values[n * count];
  std::vector<MPI_Request> requests(n, MPI_REQUEST_NULL);
  std::vector<bool> pending(n, false);
  {
    absl::MutexLock lock(&MpiLock());
    for (size_t i = 0; i < n; ++i) {
      const int rc = MPI_Rget_accumulate(
          ignored_origin, static_cast<int>(count), MPI_INT64_T, &values[i * count],
          static_cast<int>(count), MPI_INT64_T, targets[i].world_rank, targets[i].index,
          static_cast<int>(count), MPI_INT64_T, MPI_NO_OP, window_, &requests[i]);
      pending[i] = rc == MPI_SUCCESS;
    }
  }
  const absl::Time deadline = absl::Now() + grace;
  bool abandoned = false;
  while (true) {
    bool any_pending = false;
    {
      absl::MutexLock lock(&MpiLock());
      for (size_t i = 0; i < n; ++i) {
        if (!pending[i]) continue;
        int flag = 0;
        if (MPI_Test(&requests[i], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
          pending[i] = false;
        } else if (flag) {
          pending[i] = false;
          (*answered)[i] = true;
        } else {
          any_pending = true;
        }
      }
    }
    if (!any_pending) break;
    if (absl::Now() >= deadline) {
      abandoned = true;
      break;
    }
    std::this_thread::yield();
  }
  std::vector<int64_t> result(values, values + n * count);
  if (!abandoned) delete[] values;  // Else it stays allocated for the abandoned requests.
  return result;
}

std::vector<ArrivalReading> ArrivalBoard::Read(absl::Span<const ArrivalSlot> members,
                                               absl::Duration grace) {
  std::vector<ArrivalReading> readings(members.size());
  std::vector<Target> targets;
  std::vector<size_t> member_of_target;
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].slot < 0) continue;  // Untracked.
    targets.push_back(Target{members[i].world_rank, members[i].slot * kValuesPerSlot});
    member_of_target.push_back(i);
  }
  std::vector<bool> answered;
  const std::vector<int64_t> values = Fetch(targets, kValuesPerSlot, grace, &answered);
  for (size_t t = 0; t < targets.size(); ++t) {
    ArrivalReading& reading = readings[member_of_target[t]];
    if (!answered[t]) {
      reading.kind = ArrivalReading::Kind::kNoResponse;
      continue;
    }
    reading.kind = ArrivalReading::Kind::kRead;
    reading.tag = values[t * kValuesPerSlot];
    const int64_t counter = values[t * kValuesPerSlot + 1];
    reading.left = counter < 0;
    reading.last_op = counter < 0 ? -counter - 1 : counter;
  }
  return readings;
}

std::vector<int> ArrivalBoard::SilentRanks(absl::Duration window, absl::Duration grace) {
  std::vector<Target> targets;
  for (int r = 0; r < world_size_; ++r) {
    if (r != world_rank_) targets.push_back(Target{r, kHeartbeatIndex});
  }
  std::vector<bool> answered_before;
  std::vector<bool> answered_after;
  const std::vector<int64_t> before = Fetch(targets, 1, grace, &answered_before);
  absl::SleepFor(window);
  const std::vector<int64_t> after = Fetch(targets, 1, grace, &answered_after);
  std::vector<int> silent;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!answered_after[i] || (answered_before[i] && before[i] == after[i])) {
      silent.push_back(targets[i].world_rank);
    }
  }
  return silent;
}

}  // namespace trident::comm::mpi_internal
