#include "data_parallel/grad_buckets.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "core/ops/elementwise.h"
#include "core/status_macros.h"
#include "core/tensor_comm.h"

namespace trident::data_parallel {
namespace {

// An undefined tensor to assign from (copying one, rather than moving a
// temporary, keeps g++ 12's -Wmaybe-uninitialized quiet about InlinedVector).
const Tensor& NoTensor() {
  static const Tensor* none = new Tensor();
  return *none;
}

int64_t RoundUp(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// Cuts `params` (in reverse order of use) into units that a bucket never
// splits: the runs of parameters of one layer (`layer_of`), and every
// parameter of no layer on its own.
std::vector<std::vector<Parameter*>> Units(const std::vector<Parameter*>& params,
                                           const absl::flat_hash_map<const Parameter*, int>& layer_of) {
  std::vector<std::vector<Parameter*>> units;
  int current = -1;
  for (Parameter* p : params) {
    const auto it = layer_of.find(p);
    const int layer = it == layer_of.end() ? -1 : it->second;
    if (units.empty() || layer < 0 || layer != current) units.emplace_back();
    units.back().push_back(p);
    current = layer;
  }
  return units;
}

// Groups `units` (already in reverse order of use) into buckets of at most
// `capacity` elements; a unit larger than `capacity` gets a bucket of its own.
std::vector<std::vector<Parameter*>> Fill(const std::vector<std::vector<Parameter*>>& units,
                                          int64_t capacity) {
  std::vector<std::vector<Parameter*>> groups;
  int64_t size = 0;
  for (const std::vector<Parameter*>& unit : units) {
    int64_t n = 0;
    for (const Parameter* p : unit) n += p->grad.numel();
    if (groups.empty() || (size > 0 && size + n > capacity)) {
      groups.emplace_back();
      size = 0;
    }
    groups.back().insert(groups.back().end(), unit.begin(), unit.end());
    size += n;
  }
  return groups;
}

// Fill, except that under compression a bucket never mixes tp-split and
// tp-replicated parameters (see "Compression and tensor parallelism" in
// grad_buckets.h): each kind is filled on its own, and the buckets of both
// are merged in the order they become ready, i.e. by the position of their
// last unit in `units`, so that no bucket waits behind one that completes
// later. When every unit is of one kind this is Fill.
std::vector<std::vector<Parameter*>> FillByReplication(
    const std::vector<std::vector<Parameter*>>& units, int64_t capacity) {
  struct Kind {
    std::vector<std::vector<Parameter*>> units;
    std::vector<int> positions;  // Of each unit in `units`.
    std::vector<std::vector<Parameter*>> groups;
    std::vector<int> ready_at;  // Per group: the position of its last unit.
  };
  Kind kinds[2];  // [0] tp-split, [1] tp-replicated.
  for (int i = 0; i < static_cast<int>(units.size()); ++i) {
    // Compression runs at ZeRO stage 0, where every unit is one parameter.
    TRIDENT_CHECK_EQ(units[i].size(), 1u) << "replication-pure buckets need one-parameter units";
    Kind& kind = kinds[units[i].front()->layout.replicated() ? 1 : 0];
    kind.units.push_back(units[i]);
    kind.positions.push_back(i);
  }
  for (Kind& kind : kinds) {
    kind.groups = Fill(kind.units, capacity);
    // Fill keeps the units' order, so the groups' last units are found in turn.
    int unit = -1;
    for (const std::vector<Parameter*>& group : kind.groups) {
      unit += static_cast<int>(group.size());
      kind.ready_at.push_back(kind.positions[unit]);
    }
  }
  std::vector<std::vector<Parameter*>> merged;
  size_t next[2] = {0, 0};
  while (next[0] < kinds[0].groups.size() || next[1] < kinds[1].groups.size()) {
    const bool take_replicated = next[0] == kinds[0].groups.size() ||
                                 (next[1] < kinds[1].groups.size() &&
                                  kinds[1].ready_at[next[1]] < kinds[0].ready_at[next[0]]);
    Kind& kind = kinds[take_replicated ? 1 : 0];
    merged.push_back(std::move(kind.groups[next[take_replicated ? 1 : 0]++]));
  }
  return merged;
}

}  // namespace

GradientReducer::GradientReducer(comm::Communicator* dp, const BucketOptions& options)
    : dp_(dp),
      sync_(options.sync),
      dp_size_(dp == nullptr ? 1 : dp->size()),
      zero_stage_(dp_size_ > 1 ? options.zero_stage : 0),
      options_(options) {}

GradientReducer::~GradientReducer() {
  // Handles wait in their destructors; waiting here keeps the buffers alive
  // until no reduction can write them.
  for (auto& handle : pending_) handle->Wait().IgnoreError();
  for (GradientBucket& b : buckets_) {
    if (b.gather != nullptr) b.gather->Wait().IgnoreError();
  }
}

absl::StatusOr<std::unique_ptr<GradientReducer>> GradientReducer::Create(
    const ParameterList& params, const ParameterList& late, comm::Communicator* dp,
    const BucketOptions& options) {
  if (options.zero_stage < 0 || options.zero_stage > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("zero_stage=", options.zero_stage,
                     ": the gradient reducer implements ZeRO stages 0 to 3"));
  }
  if (!(options.bucket_mb > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("grad_bucket_mb=", options.bucket_mb, " must be a positive number of MiB"));
  }
  if (!IsFloatingPoint(options.value_dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("value_dtype=", DTypeName(options.value_dtype),
                     ": ZeRO 3's value shards hold parameter values, a float dtype"));
  }
  std::unique_ptr<GradientReducer> reducer(new GradientReducer(dp, options));
  if (reducer->zero_stage_ >= 2 && options.ctx == nullptr) {
    return absl::InvalidArgumentError(
        "ZeRO stages 2 and 3 need an execution context (BucketOptions::ctx)");
  }
  absl::flat_hash_set<const Parameter*> late_set(late.begin(), late.end());
  // Stages 2-3: buckets hold whole layers, and a parameter of several layers
  // joins the late ones (a full buffer, reduced by Finish): see
  // BucketOptions::layers.
  absl::flat_hash_map<const Parameter*, int> layer_of;
  if (reducer->zero_stage_ >= 2) {
    absl::flat_hash_map<const Parameter*, int> layers_using;
    for (int i = 0; i < static_cast<int>(options.layers.size()); ++i) {
      for (const Parameter* p : options.layers[i]) {
        layer_of.try_emplace(p, i);
        ++layers_using[p];
      }
    }
    for (const auto& [p, uses] : layers_using) {
      if (uses > 1) late_set.insert(p);
    }
  }
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
  // Compression acts at stage 0 only (ZeRO reduce-scatters natively).
  const bool compressed =
      options.sync.compression != GradientCompression::kNone && reducer->zero_stage_ == 0;
  const std::vector<std::vector<Parameter*>> early_groups =
      compressed ? FillByReplication(Units(early_reversed, layer_of), capacity)
                 : Fill(Units(early_reversed, layer_of), capacity);
  // Stages 2-3: each layer's late parameters get a bucket of their own, so
  // that stage 3 gathers no other layer's values with a layer's.
  const std::vector<std::vector<Parameter*>> late_groups =
      compressed ? FillByReplication(Units(late_reversed, layer_of), capacity)
                 : Fill(Units(late_reversed, layer_of), layer_of.empty() ? capacity : 1);
  for (const bool is_late : {false, true}) {
    for (std::vector<Parameter*> group : is_late ? late_groups : early_groups) {
      GradientBucket bucket;
      bucket.late = is_late;
      for (Parameter* p : group) bucket.numel += p->grad.numel();
      const Device device = group.front()->grad.device();
      const int64_t padded = RoundUp(bucket.numel, reducer->dp_size_);
      const int index = static_cast<int>(reducer->buckets_.size());
      bucket.pooled = reducer->zero_stage_ >= 2 && !is_late;
      Tensor storage;
      if (bucket.pooled) {
        // Until its first W binds it, every pooled bucket's views point into
        // pool buffer 0, which is large enough for any bucket.
        if (reducer->pool_.empty()) {
          int64_t largest = 0;
          for (const auto& g : early_groups) {
            int64_t n = 0;
            for (Parameter* p : g) n += p->grad.numel();
            largest = std::max(largest, RoundUp(n, reducer->dp_size_));
          }
          reducer->max_padded_ = largest;
          reducer->pool_.push_back(Tensor::Zeros({largest}, DType::kFloat32, device));
          reducer->free_pool_.push_back(0);
        }
        storage = reducer->pool_[0];
        for (Parameter* p : group) reducer->pooled_bucket_of_[p] = index;
      } else {
        bucket.buffer = Tensor::Zeros({padded}, DType::kFloat32, device);
        storage = bucket.buffer;
      }
      int64_t offset = 0;
      std::vector<BucketMatrix> matrices;  // For PowerSGD.
      for (Parameter* p : group) {
        const int64_t n = p->grad.numel();
        if (p->grad.shape().size() == 2) {
          matrices.push_back({.offset = offset, .rows = p->grad.dim(0), .cols = p->grad.dim(1)});
        }
        // The view replaces the parameter's own tensor: the model's weight
        // passes accumulate straight into the bucket.
        p->grad = storage.Slice(0, offset, n).Reshape(p->grad.shape());
        offset += n;
        if (!is_late) reducer->bucket_of_[p] = index;
        reducer->value_bucket_of_[p] = index;
      }
      bucket.params = std::move(group);
      reducer->sync_.DescribeBucket(index, std::move(matrices));
      if (reducer->zero_stage_ > 0) {
        const int64_t shard = padded / reducer->dp_size_;
        // In place: a full bucket's reduce-scatter writes its own owned window.
        bucket.shard = bucket.pooled
                           ? Tensor::Zeros({shard}, DType::kFloat32, device)
                           : bucket.buffer.Slice(0, dp->rank() * shard, shard);
        if (reducer->zero_stage_ == 3) {
          bucket.value_shard = Tensor::Zeros({shard}, options.value_dtype, device);
        }
        // This rank's window [begin, begin + shard) of the bucket, cut at
        // parameter boundaries.
        const int64_t begin = dp->rank() * shard;
        int64_t start = 0;
        for (Parameter* p : bucket.params) {
          const int64_t n = p->grad.numel();
          const int64_t lo = std::max(start, begin);
          const int64_t hi = std::min(start + n, begin + shard);
          if (lo < hi) {
            const Tensor value = reducer->zero_stage_ == 3
                                     ? bucket.value_shard.Slice(0, lo - begin, hi - lo)
                                     : Tensor();
            reducer->owned_.push_back({.param = p,
                                       .offset = lo - start,
                                       .length = hi - lo,
                                       .grad = bucket.shard.Slice(0, lo - begin, hi - lo),
                                       .bucket = static_cast<int>(reducer->buckets_.size()),
                                       .shard_offset = lo - begin,
                                       .value = value});
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
  for (InFlight& f : in_flight_) f.handle->Wait().IgnoreError();
  in_flight_.clear();
  deferred_error_ = absl::OkStatus();
  free_pool_.clear();
  for (int i = static_cast<int>(pool_.size()); i-- > 0;) free_pool_.push_back(i);
  bound_to_.assign(buckets_.size(), -1);
  bound_at_.assign(buckets_.size(), 0);
  done_since_bind_.assign(buckets_.size(), 0);
  done_.clear();
  // Stage 2 accumulates each micro-batch's reduce-scatter into the shards.
  for (GradientBucket& b : buckets_) {
    if (b.pooled) ops::Fill(*options_.ctx, b.shard, 0.0f);
  }
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
  const GradientBucket& b = buckets_[bucket];
  if (b.pooled) return;  // Reduced per micro-batch (LayerDone).
  if (log_ != nullptr) log_->push_back(absl::StrCat("start ", bucket));
  if (dp_size_ == 1) return;
  pending_.push_back(IssueReduction(bucket, b.buffer, b.shard));
}

std::unique_ptr<comm::CommHandle> GradientReducer::IssueReduction(int bucket, const Tensor& full,
                                                                  const Tensor& owned_window) {
  // Stage 0 sums through the layout's algorithm and compression; ZeRO's
  // reduce-scatter is native (compression refuses ZeRO >= 1 in validation).
  if (zero_stage_ == 0) return sync_.StartSum(*dp_, bucket, AsCommBuffer(full));
  return dp_->ReduceScatterAsync(AsCommBuffer(full), AsCommBuffer(owned_window),
                                 comm::ReduceOp::kSum);
}

void GradientReducer::Poll() {
  for (auto& handle : pending_) handle->Progress();
  for (GradientBucket& b : buckets_) {
    if (b.gather != nullptr) b.gather->Progress();
  }
  for (InFlight& f : in_flight_) f.handle->Progress();
}

int GradientReducer::AcquirePooled(const std::vector<int>& starting) {
  // kGradientPoolBuffers buffers let one bucket's reduce-scatter run while the
  // next one accumulates; beyond that, wait for the oldest reduction rather
  // than grow.
  if (free_pool_.empty() && static_cast<int>(pool_.size()) < kGradientPoolBuffers) {
    pool_.push_back(Tensor::Zeros({max_padded_}, DType::kFloat32, pool_[0].device()));
    return static_cast<int>(pool_.size()) - 1;
  }
  if (free_pool_.empty() && !in_flight_.empty()) deferred_error_.Update(CompleteOldest());
  if (free_pool_.empty()) {
    // Every buffer is bound: evict the bucket bound longest ago that the
    // starting pass does not write (its partial sum is reduced now, the rest
    // after it is bound again).
    int evict = -1;
    for (int k = 0; k < static_cast<int>(buckets_.size()); ++k) {
      if (bound_to_[k] < 0 || absl::c_linear_search(starting, k)) continue;
      if (evict < 0 || bound_at_[k] < bound_at_[evict]) evict = k;
    }
    if (evict >= 0) {
      ReduceBound(evict);
      if (free_pool_.empty()) deferred_error_.Update(CompleteOldest());
    }
  }
  if (free_pool_.empty()) {
    // The starting pass itself writes more buckets than the pool holds.
    pool_.push_back(Tensor::Zeros({max_padded_}, DType::kFloat32, pool_[0].device()));
    return static_cast<int>(pool_.size()) - 1;
  }
  const int index = free_pool_.back();
  free_pool_.pop_back();
  return index;
}

void GradientReducer::Bind(int bucket, const std::vector<int>& starting) {
  GradientBucket& b = buckets_[bucket];
  const int index = AcquirePooled(starting);
  const Tensor buffer = pool_[index].Slice(0, 0, b.shard.numel() * dp_size_);
  ops::Fill(*options_.ctx, buffer, 0.0f);
  int64_t offset = 0;
  for (Parameter* p : b.params) {
    const int64_t n = p->grad.numel();
    p->grad = buffer.Slice(0, offset, n).Reshape(p->grad.shape());
    done_[p] = false;
    offset += n;
  }
  bound_to_[bucket] = index;
  bound_at_[bucket] = ++binds_;
  done_since_bind_[bucket] = 0;
}

void GradientReducer::ReduceBound(int bucket) {
  GradientBucket& b = buckets_[bucket];
  const int index = bound_to_[bucket];
  bound_to_[bucket] = -1;
  if (log_ != nullptr) log_->push_back(absl::StrCat("reduce-scatter ", bucket));
  const int64_t shard = b.shard.numel();
  // In place: the buffer's owned window receives the sum, then joins the shard.
  InFlight f{.bucket = bucket,
             .pool_index = index,
             .window = pool_[index].Slice(0, dp_->rank() * shard, shard)};
  f.handle = IssueReduction(bucket, pool_[index].Slice(0, 0, shard * dp_size_), f.window);
  in_flight_.push_back(std::move(f));
  if (!options_.overlap) deferred_error_.Update(CompleteOldest());
}

absl::Status GradientReducer::CompleteOldest() {
  InFlight f = std::move(in_flight_.front());
  in_flight_.erase(in_flight_.begin());
  const absl::Status status = f.handle->Wait();
  if (status.ok()) ops::Axpy(*options_.ctx, 1.0f, f.window, buckets_[f.bucket].shard);
  free_pool_.push_back(f.pool_index);
  return status;
}

void GradientReducer::LayerStarting(const ParameterList& params) {
  if (zero_stage_ < 2) return;
  std::vector<int> starting;
  for (Parameter* p : params) {
    const auto it = pooled_bucket_of_.find(p);
    if (it != pooled_bucket_of_.end() && !absl::c_linear_search(starting, it->second)) {
      starting.push_back(it->second);
    }
  }
  for (int k : starting) {
    if (bound_to_[k] < 0) Bind(k, starting);
  }
}

void GradientReducer::LayerDone(const ParameterList& params) {
  if (zero_stage_ < 2) return;
  for (Parameter* p : params) {
    const auto it = pooled_bucket_of_.find(p);
    if (it == pooled_bucket_of_.end() || bound_to_[it->second] < 0) continue;
    bool& done = done_[p];
    if (done) continue;
    done = true;
    // Every parameter of the bucket has had a pass since binding: what the
    // buffer holds goes to the owners, and the buffer to the next bucket.
    if (++done_since_bind_[it->second] == static_cast<int>(buckets_[it->second].params.size())) {
      ReduceBound(it->second);
    }
  }
  Poll();
}

absl::Status GradientReducer::Finish() {
  if (log_ != nullptr) log_->push_back("finish");
  for (int k = 0; k < static_cast<int>(buckets_.size()); ++k) {
    if (buckets_[k].pooled && bound_to_[k] >= 0) ReduceBound(k);
  }
  while (next_to_start_ < static_cast<int>(buckets_.size())) Start(next_to_start_++);
  absl::Status status = deferred_error_;
  for (auto& handle : pending_) status.Update(handle->Wait());
  pending_.clear();
  while (!in_flight_.empty()) status.Update(CompleteOldest());
  return status;
}

absl::Status GradientReducer::GatherParameters(const ExecContext& ctx) {
  // Stage 3: the optimizer updated the value shards themselves; layers
  // gather them when they need them.
  if (zero_stage_ == 0 || zero_stage_ == 3) return absl::OkStatus();
  // The buckets' owned windows keep the reduced gradients (GatherGradients),
  // so the values travel through transient buffers, two buckets at a time:
  // one bucket's values are copied out while the next one's are in flight.
  // They travel in the values' own dtype (16-bit under mixed precision, half
  // the bytes of fp32): the copies in and out are then exact.
  struct Receiving {
    int bucket;
    Tensor send;    // The owned values and zero padding [padded / dp].
    Tensor values;  // Every replica's [padded].
    std::unique_ptr<comm::CommHandle> handle;
  };
  std::deque<Receiving> receiving;
  absl::Status status;
  const auto complete_oldest = [&] {
    Receiving r = std::move(receiving.front());
    receiving.pop_front();
    const absl::Status done = r.handle->Wait();
    status.Update(done);
    if (!done.ok()) return;
    int64_t start = 0;
    for (Parameter* p : buckets_[r.bucket].params) {
      const int64_t n = p->value.numel();
      ops::Copy(ctx, r.values.Slice(0, start, n), p->value.Flatten());
      start += n;
    }
  };
  size_t window = 0;
  for (int k = 0; k < static_cast<int>(buckets_.size()); ++k) {
    const GradientBucket& b = buckets_[k];
    if (receiving.size() == 2) complete_oldest();
    const DType dtype = b.params.front()->value.dtype();
    Receiving r{.bucket = k,
                .send = Tensor::Zeros({b.shard.numel()}, dtype, b.shard.device()),
                .values = Tensor::Empty({b.shard.numel() * dp_size_}, dtype, b.shard.device())};
    // owned_ lists the windows bucket by bucket.
    for (; window < owned_.size() && owned_[window].bucket == k; ++window) {
      const OwnedWindow& w = owned_[window];
      ops::Copy(ctx, w.param->value.Flatten().Slice(0, w.offset, w.length),
                r.send.Slice(0, w.shard_offset, w.length));
    }
    r.handle = dp_->AllGatherAsync(AsCommBuffer(r.send), AsCommBuffer(r.values));
    receiving.push_back(std::move(r));
  }
  while (!receiving.empty()) complete_oldest();
  return status;
}

absl::Status GradientReducer::GatherGradients() {
  if (zero_stage_ == 0) return absl::OkStatus();
  std::vector<std::unique_ptr<comm::CommHandle>> gathers;
  for (GradientBucket& b : buckets_) {
    // A full bucket gathers in place (its shard is its owned window).
    Tensor full = b.buffer;
    if (b.pooled) {
      // Stage 2 keeps no full gradient: a transient one for inspection, which
      // the parameters' grads view until the next W binds them again.
      full = Tensor::Zeros({b.shard.numel() * dp_size_}, DType::kFloat32, b.shard.device());
      int64_t offset = 0;
      for (Parameter* p : b.params) {
        const int64_t n = p->grad.numel();
        p->grad = full.Slice(0, offset, n).Reshape(p->grad.shape());
        offset += n;
      }
    }
    gathers.push_back(dp_->AllGatherAsync(AsCommBuffer(b.shard), AsCommBuffer(full)));
  }
  absl::Status status;
  for (auto& handle : gathers) status.Update(handle->Wait());
  return status;
}

std::vector<int> GradientReducer::BucketsOf(const ParameterList& params) const {
  std::vector<int> buckets;
  for (const Parameter* p : params) {
    const auto it = value_bucket_of_.find(p);
    if (it != value_bucket_of_.end()) buckets.push_back(it->second);
  }
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  return buckets;
}

absl::Status GradientReducer::ShardParameters() {
  if (zero_stage_ != 3 || values_sharded_) return absl::OkStatus();
  // The shards take the values as they are: a dtype mismatch (values not yet
  // rounded to 16 bits, or not meant to be) would round or widen silently.
  for (const GradientBucket& b : buckets_) {
    for (const Parameter* p : b.params) {
      if (p->value.dtype() != options_.value_dtype) {
        return absl::FailedPreconditionError(absl::StrCat(
            "ShardParameters: parameter '", p->name, "' has ", DTypeName(p->value.dtype()),
            " values but the ZeRO 3 value shards are ", DTypeName(options_.value_dtype),
            " (BucketOptions::value_dtype must be the model's parameter dtype)"));
      }
    }
  }
  for (const OwnedWindow& w : owned_) {
    ops::Copy(*options_.ctx, w.param->value.Flatten().Slice(0, w.offset, w.length), w.value);
  }
  for (GradientBucket& b : buckets_) {
    for (Parameter* p : b.params) p->value = NoTensor();
  }
  values_sharded_ = true;
  return absl::OkStatus();
}

void GradientReducer::StartGather(int bucket) {
  GradientBucket& b = buckets_[bucket];
  if (b.gathered.defined()) return;  // Gathered or in flight.
  b.gathered = Tensor::Empty({b.value_shard.numel() * dp_size_}, b.value_shard.dtype(),
                             b.value_shard.device());
  if (log_ != nullptr) log_->push_back(absl::StrCat("gather ", bucket));
  b.gather = dp_->AllGatherAsync(AsCommBuffer(b.value_shard), AsCommBuffer(b.gathered));
  if (!gathering_all_) peak_parameter_bytes_ = std::max(peak_parameter_bytes_, parameter_bytes());
}

absl::Status GradientReducer::CompleteGather(int bucket) {
  GradientBucket& b = buckets_[bucket];
  if (b.gather == nullptr) return absl::OkStatus();
  const absl::Status status = b.gather->Wait();
  b.gather.reset();
  RETURN_IF_ERROR(status);
  int64_t offset = 0;
  for (Parameter* p : b.params) {
    const int64_t n = p->grad.numel();
    p->value = b.gathered.Slice(0, offset, n).Reshape(p->grad.shape());
    offset += n;
  }
  return absl::OkStatus();
}

void GradientReducer::Release(int bucket) {
  GradientBucket& b = buckets_[bucket];
  if (b.gather != nullptr) {
    b.gather->Wait().IgnoreError();
    b.gather.reset();
  }
  for (Parameter* p : b.params) p->value = NoTensor();
  b.gathered = NoTensor();
  if (log_ != nullptr) log_->push_back(absl::StrCat("release ", bucket));
}

void GradientReducer::PrefetchParameters(const ParameterList& params) {
  if (!values_sharded_) return;
  for (int k : BucketsOf(params)) {
    GradientBucket& b = buckets_[k];
    ++b.users;
    ++b.prefetched;
    StartGather(k);
  }
}

absl::Status GradientReducer::NeedParameters(const ParameterList& params) {
  if (!values_sharded_) return absl::OkStatus();
  const std::vector<int> buckets = BucketsOf(params);
  for (int k : buckets) {
    GradientBucket& b = buckets_[k];
    if (b.prefetched > 0) {
      --b.prefetched;  // The Prefetch's count stands for this Need.
    } else {
      ++b.users;
    }
    StartGather(k);
  }
  absl::Status status;
  for (int k : buckets) status.Update(CompleteGather(k));
  return status;
}

void GradientReducer::DoneWithParameters(const ParameterList& params) {
  if (!values_sharded_) return;
  for (int k : BucketsOf(params)) {
    GradientBucket& b = buckets_[k];
    TRIDENT_CHECK(b.users > 0) << "DoneWithParameters without a matching Need (bucket " << k
                               << ")";
    if (--b.users == 0) Release(k);
  }
  Poll();
}

absl::Status GradientReducer::GatherAllParameters() {
  if (!values_sharded_) return absl::OkStatus();
  ParameterList all;
  for (const GradientBucket& b : buckets_) all.insert(all.end(), b.params.begin(), b.params.end());
  // An export, not training: kept out of peak_parameter_bytes.
  gathering_all_ = true;
  const absl::Status status = NeedParameters(all);
  gathering_all_ = false;
  return status;
}

void GradientReducer::ReleaseAllParameters() {
  if (!values_sharded_) return;
  ParameterList all;
  for (const GradientBucket& b : buckets_) all.insert(all.end(), b.params.begin(), b.params.end());
  DoneWithParameters(all);
}

int64_t GradientReducer::parameter_bytes() const {
  int64_t bytes = 0;
  for (const GradientBucket& b : buckets_) {
    if (b.value_shard.defined()) bytes += b.value_shard.nbytes();
    if (b.gathered.defined()) bytes += b.gathered.nbytes();
    if (!values_sharded_) {
      for (const Parameter* p : b.params) bytes += p->value.defined() ? p->value.nbytes() : 0;
    }
  }
  return bytes;
}

int64_t GradientReducer::peak_parameter_bytes() const {
  return std::max(peak_parameter_bytes_, parameter_bytes());
}

int GradientReducer::gathered_buckets() const {
  int n = 0;
  for (const GradientBucket& b : buckets_) n += b.gathered.defined() ? 1 : 0;
  return n;
}

absl::Status GradientReducer::RestoreSyncState(const std::vector<BucketSyncState>& state) {
  // Compression runs at ZeRO stage 0 only, where every bucket has its buffer.
  std::vector<int64_t> sizes;
  sizes.reserve(buckets_.size());
  for (const GradientBucket& b : buckets_) sizes.push_back(b.buffer.numel());
  return sync_.RestoreState(state, sizes);
}

int64_t GradientReducer::gradient_bytes() const {
  int64_t bytes = 0;
  for (const GradientBucket& b : buckets_) {
    if (b.buffer.defined()) bytes += b.buffer.nbytes();
    // A full bucket's shard is a view of its buffer.
    if (b.pooled) bytes += b.shard.nbytes();
  }
  for (const Tensor& t : pool_) bytes += t.nbytes();
  return bytes;
}

}  // namespace trident::data_parallel
