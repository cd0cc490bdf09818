#include "core/comm/mpi/mpi_handle.h"

#include <errno.h>

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

BlockingCallWatchdog::BlockingCallWatchdog(absl::Duration timeout, int world_rank,
                                           std::string what) {
  thread_ = std::thread([this, timeout, world_rank, what = std::move(what)] {
    absl::MutexLock lock(&mutex_);
    if (mutex_.AwaitWithTimeout(absl::Condition(&returned_), timeout)) return;
    MpiAbortJob(absl::StrCat(program_invocation_short_name, ": rank ", world_rank,
                             ": DEADLINE_EXCEEDED: ", what, " did not complete within ",
                             absl::FormatDuration(timeout),
                             ": a member never joined (stopped, failed, or creating another "
                             "group); MPI cannot abandon this call, so the job ends"),
                1);
  });
}

BlockingCallWatchdog::~BlockingCallWatchdog() {
  {
    absl::MutexLock lock(&mutex_);
    returned_ = true;
  }
  thread_.join();
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

void CollectiveHandle::Progress() {
  if (finished_) return;
  absl::MutexLock lock(&MpiLock());
  ProgressAllQueues();
}

absl::Status CollectiveHandle::TimeoutError() {
  const GroupState::Arrivals arrivals = group_->FindMissingArrivals(op_->op_number);
  const std::string silent = group_->SilentRanksNote();
  const std::string where =
      absl::StrCat(" (operation #", op_->op_number, " on this communicator",
                   arrivals.details.empty() ? "" : "; ", arrivals.details, ")", silent);
  if (arrivals.missing.empty()) {
    // A member that stops inside the operation has arrived too.
    return absl::DeadlineExceededError(absl::StrCat(
        CommOpName(op_->op), " on ", group_->description, " timed out after ",
        absl::FormatDuration(timeout_), "; every member arrived",
        silent.empty() ? ", so they may disagree on its arguments (count, dtype, root)" : "",
        where));
  }
  const absl::Status base =
      DeadlineExceededError(group_->description, op_->op, timeout_, arrivals.missing);
  return absl::DeadlineExceededError(absl::StrCat(base.message(), where));
}

// ---------------------------------------------------------------------------
// Point to point.

PointToPointHandle::PointToPointHandle(std::shared_ptr<GroupState> group, absl::Duration timeout)
    : group_(std::move(group)), timeout_(timeout) {}

PointToPointHandle::~PointToPointHandle() {
  if (!finished_) Wait().IgnoreError();
}

void PointToPointHandle::BeginOp(CommOp op, int peer, int tag) {
  ops_.push_back(Op{op, peer, tag, requests_.size(), requests_.size()});
}

void PointToPointHandle::AddRequest(MPI_Request request, int64_t expected_count,
                                    MPI_Datatype datatype) {
  requests_.push_back(request);
  expected_counts_.push_back(expected_count);
  datatypes_.push_back(datatype);
  ops_.back().end_request = requests_.size();
}

void PointToPointHandle::Abandon() { finished_ = true; }

std::string PointToPointHandle::Describe(const Op& op) const {
  return absl::StrCat(CommOpName(op.op), (op.op == CommOp::kSend ? " to" : " from"), " group rank ",
                      op.peer, " (world rank ", group_->world_ranks[op.peer], ", tag ", op.tag,
                      ") on ", group_->description);
}

std::string PointToPointHandle::DescribeAll() const {
  if (ops_.size() == 1) return Describe(ops_.front());
  return absl::StrCat("batch of ", ops_.size(), " sends and receives on ", group_->description);
}

absl::Status PointToPointHandle::Wait() {
  if (finished_) return status_;
  finished_ = true;
  statuses_.resize(requests_.size());
  status_ = PollRequests(absl::MakeSpan(requests_).subspan(first_pending_),
                         absl::MakeSpan(statuses_).subspan(first_pending_), timeout_,
                         DescribeAll());
  if (absl::IsDeadlineExceeded(status_)) status_ = TimeoutError(absl::MakeSpan(statuses_));
  Finish();
  return status_;
}

bool PointToPointHandle::Test() {
  if (finished_) return true;
  statuses_.resize(requests_.size());
  {
    absl::MutexLock lock(&MpiLock());
    ProgressAllQueues();
    while (first_pending_ < requests_.size()) {
      int flag = 0;
      const int rc = MPI_Test(&requests_[first_pending_], &flag, &statuses_[first_pending_]);
      if (rc != MPI_SUCCESS) {
        finished_ = true;
        status_ = MpiErrorToStatus(rc, DescribeAll());
        return true;
      }
      if (!flag) return false;
      ++first_pending_;
    }
  }
  finished_ = true;
  Finish();
  return true;
}

void PointToPointHandle::Finish() {
  for (const Op& op : ops_) {
    if (!status_.ok()) break;
    if (op.op == CommOp::kRecv) status_ = CheckReceivedCounts(op, absl::MakeSpan(statuses_));
  }
}

absl::Status PointToPointHandle::TimeoutError(absl::Span<MPI_Status> statuses) {
  const std::string silent = group_->SilentRanksNote();
  absl::MutexLock lock(&MpiLock());
  // PollRequests stops testing at the first pending request: test the rest,
  // so that only the ops really pending are blamed.
  for (size_t i = 0; i < requests_.size(); ++i) {
    if (requests_[i] == MPI_REQUEST_NULL) continue;
    int flag = 0;
    if (MPI_Test(&requests_[i], &flag, &statuses[i]) != MPI_SUCCESS) flag = 0;
  }
  const Op* first_pending = nullptr;
  std::vector<int> missing;
  for (const Op& op : ops_) {
    for (size_t i = op.first_request; i < op.end_request; ++i) {
      if (requests_[i] == MPI_REQUEST_NULL) continue;
      // The partner never posted the matching call (a send of a small
      // message completes on its own, so this is a receive or a large send).
      if (first_pending == nullptr) first_pending = &op;
      missing.push_back(group_->world_ranks[op.peer]);
      break;
    }
  }
  if (first_pending == nullptr) return absl::OkStatus();  // Completed meanwhile.
  std::sort(missing.begin(), missing.end());
  missing.erase(std::unique(missing.begin(), missing.end()), missing.end());
  absl::Status status =
      DeadlineExceededError(group_->description, first_pending->op, timeout_, missing);
  if (!silent.empty()) {
    status = absl::DeadlineExceededError(absl::StrCat(status.message(), silent));
  }
  group_->Break(status);
  return status;
}

absl::Status PointToPointHandle::CheckReceivedCounts(const Op& op,
                                                     absl::Span<MPI_Status> statuses) {
  int64_t received = 0;
  int64_t expected = 0;
  bool mismatch = false;
  for (size_t i = op.first_request; i < op.end_request; ++i) {
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
  return absl::InvalidArgumentError(absl::StrCat(Describe(op), ": received ", received,
                                                 " elements but the buffer holds ", expected,
                                                 " (the sender's count or dtype differs)"));
}

}  // namespace trident::comm::mpi_internal
