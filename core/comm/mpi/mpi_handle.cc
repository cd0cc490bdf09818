#include "core/comm/mpi/mpi_handle.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/comm/mpi/mpi_runtime.h"
#include "core/comm/mpi/mpi_types.h"

namespace trident::comm::mpi_internal {
namespace {

// Polls back to back (with a yield) this long before sleeping.
constexpr absl::Duration kYieldPhase = absl::Milliseconds(10);
constexpr absl::Duration kFirstSleep = absl::Microseconds(20);
constexpr absl::Duration kLongestSleep = absl::Microseconds(500);
// MPI_Test calls per poll, back to back. Open MPI advances nonblocking
// collectives (libnbc) only on every 8th pass of its progress loop, so a
// single test between yields would leave them idle most of the time.
constexpr int kTestsPerPoll = 16;

}  // namespace

void PollPacer::Pause() {
  if (waited() < kYieldPhase) {
    std::this_thread::yield();
    return;
  }
  sleep_ = sleep_ == absl::ZeroDuration() ? kFirstSleep : std::min(sleep_ * 2, kLongestSleep);
  absl::SleepFor(sleep_);
}

absl::Status PollRequests(absl::Span<MPI_Request> requests, absl::Span<MPI_Status> statuses,
                          absl::Duration timeout, absl::string_view what) {
  PollPacer pacer;
  absl::Time deadline = absl::Now() + timeout;
  size_t first_pending = 0;
  while (true) {
    bool progressed = false;
    {
      absl::MutexLock lock(&MpiLock());
      for (int test = 0; test < kTestsPerPoll && first_pending < requests.size(); ++test) {
        ProgressAllQueues();
        // Requests of one operation complete roughly in order: test from the
        // first pending one and stop at the first still running.
        while (first_pending < requests.size()) {
          int flag = 0;
          MPI_Status status;
          const int rc = MPI_Test(&requests[first_pending], &flag, &status);
          if (rc != MPI_SUCCESS) return MpiErrorToStatus(rc, what);
          if (!flag) break;
          if (!statuses.empty()) statuses[first_pending] = status;
          ++first_pending;
          progressed = true;
        }
      }
    }
    if (first_pending == requests.size()) return absl::OkStatus();
    if (progressed) {
      deadline = absl::Now() + timeout;
      pacer = PollPacer();
    } else if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("");
    }
    pacer.Pause();
  }
}

// ---------------------------------------------------------------------------
// Collectives.

CollectiveHandle::CollectiveHandle(std::shared_ptr<GroupState> group,
                                   std::shared_ptr<QueuedCollective> op, absl::Duration timeout)
    : group_(std::move(group)), op_(std::move(op)), timeout_(timeout) {}

CollectiveHandle::~CollectiveHandle() {
  if (!finished_) Wait().IgnoreError();
}

absl::Status CollectiveHandle::Wait() {
  if (finished_) return status_;
  PollPacer pacer;
  absl::Time deadline = absl::Now() + timeout_;
  while (true) {
    bool progressed = false;
    {
      absl::MutexLock lock(&MpiLock());
      for (int test = 0; test < kTestsPerPoll && !op_->done; ++test) {
        progressed |= ProgressAllQueues();
      }
      if (op_->done) {
        status_ = op_->status;
        break;
      }
    }
    if (progressed) {
      deadline = absl::Now() + timeout_;
      pacer = PollPacer();
    } else if (absl::Now() >= deadline) {
      const absl::Status timeout = TimeoutError();
      absl::MutexLock lock(&MpiLock());
      // The operation may have completed while the peers were asked.
      if (!op_->done) group_->Break(timeout);
      status_ = op_->status;
      break;
    }
    pacer.Pause();
  }
  finished_ = true;
  return status_;
}

absl::Status CollectiveHandle::TimeoutError() {
  const GroupState::Arrivals arrivals = group_->FindMissingArrivals(op_->op_number);
  const std::string where =
      absl::StrCat(" (operation #", op_->op_number, " on this communicator",
                   arrivals.details.empty() ? "" : "; ", arrivals.details, ")");
  if (arrivals.missing.empty()) {
    return absl::DeadlineExceededError(absl::StrCat(
        CommOpName(op_->op), " on ", group_->description, " timed out after ",
        absl::FormatDuration(timeout_),
        "; every member arrived, so they may disagree on its arguments (count, dtype, root)",
        where));
  }
  const absl::Status base =
      DeadlineExceededError(group_->description, op_->op, timeout_, arrivals.missing);
  return absl::DeadlineExceededError(absl::StrCat(base.message(), where));
}

// ---------------------------------------------------------------------------
// Point to point.

PointToPointHandle::PointToPointHandle(std::shared_ptr<GroupState> group, CommOp op, int peer,
                                       int tag, absl::Duration timeout)
    : group_(std::move(group)), op_(op), peer_(peer), tag_(tag), timeout_(timeout) {}

PointToPointHandle::~PointToPointHandle() {
  if (!finished_) Wait().IgnoreError();
}

void PointToPointHandle::AddRequest(MPI_Request request, int64_t expected_count,
                                    MPI_Datatype datatype) {
  requests_.push_back(request);
  expected_counts_.push_back(expected_count);
  datatypes_.push_back(datatype);
}

void PointToPointHandle::FailIssue(absl::Status status) {
  status_ = std::move(status);
  finished_ = true;
}

std::string PointToPointHandle::Describe() const {
  return absl::StrCat(CommOpName(op_), (op_ == CommOp::kSend ? " to" : " from"), " group rank ",
                      peer_, " (world rank ", group_->world_ranks[peer_], ", tag ", tag_, ") on ",
                      group_->description);
}

absl::Status PointToPointHandle::Wait() {
  if (finished_) return status_;
  finished_ = true;
  std::vector<MPI_Status> statuses(requests_.size());
  const absl::Status polled =
      PollRequests(absl::MakeSpan(requests_), absl::MakeSpan(statuses), timeout_, Describe());
  if (absl::IsDeadlineExceeded(polled)) {
    // The partner never posted the matching call (a send of a small message
    // completes on its own, so this is a receive or a large send).
    status_ =
        DeadlineExceededError(group_->description, op_, timeout_, {group_->world_ranks[peer_]});
    absl::MutexLock lock(&MpiLock());
    group_->Break(status_);
    return status_;
  }
  status_ = polled.ok() ? CheckReceivedCounts(absl::MakeSpan(statuses)) : polled;
  return status_;
}

absl::Status PointToPointHandle::CheckReceivedCounts(absl::Span<MPI_Status> statuses) {
  int64_t received = 0;
  int64_t expected = 0;
  bool mismatch = false;
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (expected_counts_[i] < 0) continue;
    int count = 0;
    MPI_Get_count(&statuses[i], datatypes_[i], &count);
    expected += expected_counts_[i];
    if (count == MPI_UNDEFINED) {
      mismatch = true;
      continue;
    }
    received += count;
    if (count != expected_counts_[i]) mismatch = true;
  }
  if (!mismatch) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(Describe(), ": received ", received,
                                                 " elements but the buffer holds ", expected,
                                                 " (the sender's count or dtype differs)"));
}

}  // namespace trident::comm::mpi_internal
