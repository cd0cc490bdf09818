#include "data_parallel/grad_buckets.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/ops/elementwise.h"
#include "core/status_macros.h"
#include "core/tensor_comm.h"

namespace trident::data_parallel {
namespace {

int64_t RoundUp(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// Groups `params` (already in reverse order of use) into buckets of at most
// `capacity` elements; a parameter larger than `capacity` gets its own.
std::vector<std::vector<Parameter*>> Fill(const std::vector<Parameter*>& params, int64_t capacity) {
  std::vector<std::vector<Parameter*>> groups;
  int64_t size = 0;
  for (Parameter* p : params) {
    const int64_t n = p->grad.numel();
    if (groups.empty() || (size > 0 && size + n > capacity)) {
      groups.emplace_back();
      size = 0;
    }
    groups.back().push_back(p);
    size += n;
  }
  return groups;
}

}  // namespace

GradientReducer::GradientReducer(comm::Communicator* dp, const BucketOptions& options)
    : dp_(dp),
      dp_size_(dp == nullptr ? 1 : dp->size()),
      zero_stage_(dp_size_ > 1 ? options.zero_stage : 0),
      options_(options) {}

GradientReducer::~GradientReducer() {
  // Handles wait in their destructors; waiting here keeps the buffers alive
  // until no reduction can write them.
  for (auto& handle : pending_) handle->Wait().IgnoreError();
}

absl::StatusOr<std::unique_ptr<GradientReducer>> GradientReducer::Create(
    const ParameterList& params, const ParameterList& late, comm::Communicator* dp,
    const BucketOptions& options) {
  if (options.zero_stage < 0 || options.zero_stage > 1) {
    return absl::UnimplementedError(
        absl::StrCat("zero_stage=", options.zero_stage,
                     ": the gradient reducer implements ZeRO stages 0 and 1"));
  }
  if (!(options.bucket_mb > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("grad_bucket_mb=", options.bucket_mb, " must be a positive number of MiB"));
  }
  std::unique_ptr<GradientReducer> reducer(new GradientReducer(dp, options));
  absl::flat_hash_set<const Parameter*> late_set(late.begin(), late.end());
  std::vector<Parameter*> early_reversed;
  std::vector<Parameter*> late_reversed;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    Parameter* p = *it;
    if (p == nullptr || !p->grad.defined() || p->grad.dtype() != DType::kFloat32) {
      return absl::InvalidArgumentError(
          absl::StrCat("gradient buckets need a defined fp32 gradient for every parameter; '",
                       p == nullptr ? std::string("(null)") : p->name, "' has none"));
    }
    (late_set.contains(p) ? late_reversed : early_reversed).push_back(p);
  }
  const int64_t capacity =
      std::max<int64_t>(1, static_cast<int64_t>(options.bucket_mb * 1024 * 1024 / sizeof(float)));
  for (const bool is_late : {false, true}) {
    for (std::vector<Parameter*>& group :
         Fill(is_late ? late_reversed : early_reversed, capacity)) {
      GradientBucket bucket;
      bucket.late = is_late;
      for (Parameter* p : group) bucket.numel += p->grad.numel();
      const Device device = group.front()->grad.device();
      bucket.buffer =
          Tensor::Zeros({RoundUp(bucket.numel, reducer->dp_size_)}, DType::kFloat32, device);
      int64_t offset = 0;
      for (Parameter* p : group) {
        const int64_t n = p->grad.numel();
        // The view replaces the parameter's own tensor: the model's weight
        // passes accumulate straight into the bucket.
        p->grad = bucket.buffer.Slice(0, offset, n).Reshape(p->grad.shape());
        offset += n;
        if (!is_late) reducer->bucket_of_[p] = static_cast<int>(reducer->buckets_.size());
      }
      bucket.params = std::move(group);
      if (reducer->zero_stage_ > 0) {
        const int64_t shard = bucket.buffer.numel() / reducer->dp_size_;
        bucket.shard = Tensor::Zeros({shard}, DType::kFloat32, device);
        // This rank's window [begin, begin + shard) of the bucket, cut at
        // parameter boundaries.
        const int64_t begin = dp->rank() * shard;
        int64_t start = 0;
        for (Parameter* p : bucket.params) {
          const int64_t n = p->grad.numel();
          const int64_t lo = std::max(start, begin);
          const int64_t hi = std::min(start + n, begin + shard);
          if (lo < hi) {
            reducer->owned_.push_back({.param = p,
                                       .offset = lo - start,
                                       .length = hi - lo,
                                       .grad = bucket.shard.Slice(0, lo - begin, hi - lo),
                                       .bucket = static_cast<int>(reducer->buckets_.size()),
                                       .shard_offset = lo - begin});
          }
          start += n;
        }
      }
      reducer->buckets_.push_back(std::move(bucket));
    }
  }
  reducer->BeginStep();
  return reducer;
}

void GradientReducer::BeginStep() {
  // A step that failed before Finish leaves reductions pending: they must
  // complete before the buffers are zeroed and reused.
  for (auto& handle : pending_) handle->Wait().IgnoreError();
  pending_.clear();
  next_to_start_ = 0;
  remaining_.assign(buckets_.size(), 0);
  is_final_.clear();
  for (const auto& [p, bucket] : bucket_of_) {
    ++remaining_[bucket];
    is_final_[p] = false;
  }
}

void GradientReducer::MarkFinal(const ParameterList& params) {
  for (Parameter* p : params) {
    auto it = is_final_.find(p);
    if (it == is_final_.end() || it->second) continue;
    it->second = true;
    --remaining_[bucket_of_.at(p)];
    if (log_ != nullptr) log_->push_back(absl::StrCat("final ", p->name));
  }
  if (options_.overlap) StartReady();
  Poll();
}

void GradientReducer::StartReady() {
  while (next_to_start_ < static_cast<int>(buckets_.size()) && !buckets_[next_to_start_].late &&
         remaining_[next_to_start_] == 0) {
    Start(next_to_start_++);
  }
}

void GradientReducer::Start(int bucket) {
  if (log_ != nullptr) log_->push_back(absl::StrCat("start ", bucket));
  if (dp_size_ == 1) return;
  const GradientBucket& b = buckets_[bucket];
  pending_.push_back(zero_stage_ > 0
                         ? dp_->ReduceScatterAsync(AsCommBuffer(b.buffer), AsCommBuffer(b.shard),
                                                   comm::ReduceOp::kSum)
                         : dp_->AllReduceAsync(AsCommBuffer(b.buffer), comm::ReduceOp::kSum));
}

void GradientReducer::Poll() {
  for (auto& handle : pending_) handle->Progress();
}

absl::Status GradientReducer::Finish() {
  if (log_ != nullptr) log_->push_back("finish");
  while (next_to_start_ < static_cast<int>(buckets_.size())) Start(next_to_start_++);
  absl::Status status;
  for (auto& handle : pending_) status.Update(handle->Wait());
  pending_.clear();
  return status;
}

absl::Status GradientReducer::GatherParameters(const ExecContext& ctx) {
  if (zero_stage_ == 0) return absl::OkStatus();
  // Send buffers (transient, 1 / dp of the buckets): the owned values, zero
  // padding. The shards keep the reduced gradients (GatherGradients).
  std::vector<Tensor> send;
  for (const GradientBucket& b : buckets_) {
    send.push_back(Tensor::Zeros({b.shard.numel()}, DType::kFloat32, b.shard.device()));
  }
  for (const OwnedWindow& w : owned_) {
    ops::Copy(ctx, w.param->value.Flatten().Slice(0, w.offset, w.length),
              send[w.bucket].Slice(0, w.shard_offset, w.length));
  }
  std::vector<std::unique_ptr<comm::CommHandle>> gathers;
  for (size_t k = 0; k < buckets_.size(); ++k) {
    gathers.push_back(dp_->AllGatherAsync(AsCommBuffer(send[k]), AsCommBuffer(buckets_[k].buffer)));
  }
  absl::Status status;
  for (auto& handle : gathers) status.Update(handle->Wait());
  RETURN_IF_ERROR(status);
  for (GradientBucket& b : buckets_) {
    int64_t start = 0;
    for (Parameter* p : b.params) {
      const int64_t n = p->value.numel();
      ops::Copy(ctx, b.buffer.Slice(0, start, n), p->value.Flatten());
      start += n;
    }
  }
  return absl::OkStatus();
}

absl::Status GradientReducer::GatherGradients() {
  if (zero_stage_ == 0) return absl::OkStatus();
  std::vector<std::unique_ptr<comm::CommHandle>> gathers;
  for (GradientBucket& b : buckets_) {
    gathers.push_back(dp_->AllGatherAsync(AsCommBuffer(b.shard), AsCommBuffer(b.buffer)));
  }
  absl::Status status;
  for (auto& handle : gathers) status.Update(handle->Wait());
  return status;
}

int64_t GradientReducer::gradient_bytes() const {
  int64_t bytes = 0;
  for (const GradientBucket& b : buckets_) {
    bytes += b.buffer.nbytes() + (b.shard.defined() ? b.shard.nbytes() : 0);
  }
  return bytes;
}

}  // namespace trident::data_parallel
