#include "core/comm/mpi/arrival_board.h"

#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/comm/mpi/mpi_types.h"

namespace trident::comm::mpi_internal {
namespace {

// Each slot holds two int64 values: the communicator's tag, then the number of
// the last collective entered.
constexpr int64_t kValuesPerSlot = 2;

}  // namespace

absl::StatusOr<std::shared_ptr<ArrivalBoard>> ArrivalBoard::Create(MPI_Comm world_comm) {
  int world_rank = 0;
  MPI_Comm_rank(world_comm, &world_rank);
  MPI_Info info;
  MPI_Info_create(&info);
  // Writers only replace, readers only fetch: lets MPI use plain atomics.
  MPI_Info_set(info, "accumulate_ops", "same_op_no_op");
  MPI_Info_set(info, "same_size", "true");
  int64_t* base = nullptr;
  MPI_Win window = MPI_WIN_NULL;
  const int rc = MPI_Win_allocate(kSlots * kValuesPerSlot * sizeof(int64_t), sizeof(int64_t), info,
                                  world_comm, &base, &window);
  MPI_Info_free(&info);
  if (rc != MPI_SUCCESS) return MpiErrorToStatus(rc, "MPI_Win_allocate for arrival counters");
  MPI_Win_set_errhandler(window, MPI_ERRORS_RETURN);
  std::memset(base, 0, kSlots * kValuesPerSlot * sizeof(int64_t));
  MPI_Win_lock_all(MPI_MODE_NOCHECK, window);
  MPI_Win_sync(window);
  // Nobody reads a table before its owner has cleared it.
  MPI_Barrier(world_comm);
  std::shared_ptr<ArrivalBoard> board(new ArrivalBoard(window, world_rank));
  board->SetTag(kWorldSlot, kWorldTag);
  return board;
}

ArrivalBoard::ArrivalBoard(MPI_Win window, int world_rank)
    : window_(window), world_rank_(world_rank) {
  absl::MutexLock lock(&slots_mutex_);
  for (int64_t slot = kWorldSlot + 1; slot < kSlots; ++slot) free_slots_.push_back(slot);
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

std::vector<ArrivalReading> ArrivalBoard::Read(absl::Span<const ArrivalSlot> members,
                                               absl::Duration grace) {
  const size_t n = members.size();
  std::vector<ArrivalReading> readings(n);
  // Results land here; the vector is never resized while requests are pending.
  // Requests still pending after the grace period are abandoned with their
  // buffers, which is why these live on the heap and are leaked in that case.
  // The last pair is the (ignored) origin buffer of the MPI_NO_OP fetches.
  auto* values = new int64_t[(n + 1) * kValuesPerSlot]();
  int64_t* const ignored_origin = &values[n * kValuesPerSlot];
  std::vector<MPI_Request> requests(n, MPI_REQUEST_NULL);
  std::vector<bool> done(n, true);
  {
    absl::MutexLock lock(&MpiLock());
    for (size_t i = 0; i < n; ++i) {
      if (members[i].slot < 0) continue;
      const int rc = MPI_Rget_accumulate(
          ignored_origin, kValuesPerSlot, MPI_INT64_T, &values[i * kValuesPerSlot], kValuesPerSlot,
          MPI_INT64_T, members[i].world_rank, members[i].slot * kValuesPerSlot, kValuesPerSlot,
          MPI_INT64_T, MPI_NO_OP, window_, &requests[i]);
      if (rc == MPI_SUCCESS) {
        done[i] = false;
      } else {
        readings[i].kind = ArrivalReading::Kind::kNoResponse;
      }
    }
  }
  const absl::Time deadline = absl::Now() + grace;
  bool all_done = false;
  while (!all_done) {
    all_done = true;
    {
      absl::MutexLock lock(&MpiLock());
      for (size_t i = 0; i < n; ++i) {
        if (done[i]) continue;
        int flag = 0;
        if (MPI_Test(&requests[i], &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
          done[i] = true;
          readings[i].kind = ArrivalReading::Kind::kNoResponse;
          continue;
        }
        if (flag) {
          done[i] = true;
          readings[i].kind = ArrivalReading::Kind::kRead;
          readings[i].tag = values[i * kValuesPerSlot];
          const int64_t counter = values[i * kValuesPerSlot + 1];
          readings[i].left = counter < 0;
          readings[i].last_op = counter < 0 ? -counter - 1 : counter;
        } else {
          all_done = false;
        }
      }
    }
    if (all_done) break;
    if (absl::Now() >= deadline) {
      for (size_t i = 0; i < n; ++i) {
        if (!done[i]) readings[i].kind = ArrivalReading::Kind::kNoResponse;
      }
      return readings;  // `values` stays allocated for the abandoned requests.
    }
    std::this_thread::yield();
  }
  delete[] values;
  return readings;
}

}  // namespace trident::comm::mpi_internal
