#ifndef TRIDENT_DATA_PARALLEL_GRAD_BUCKETS_H_
#define TRIDENT_DATA_PARALLEL_GRAD_BUCKETS_H_

// Bucketed data-parallel gradient reduction (DESIGN.md "Data parallelism").
//
// Gradients live in flat fp32 buffers, one per bucket; every Parameter's
// `grad` becomes a view into its bucket, so the model's weight-gradient passes
// accumulate straight into the buffer that is reduced, with no copy. Buckets
// are filled in reverse order of use (the parameters of the last layers
// first: their gradients are final first) up to `bucket_mb` MiB each; a
// parameter larger than a bucket gets a bucket of its own. Each bucket is
// padded with zeros to a multiple of the dp size, so that a ZeRO shard is an
// equal window of every bucket.
//
// A step:
//   reducer.BeginStep();                         // after ZeroGrad
//   ... backward; after the LAST weight-gradient pass of a step touching some
//       parameters: reducer.MarkFinal(those parameters); after every weight
//       pass: reducer.Poll() ...
//   ... tied-embedding and sequence-parallel syncs of the `late` parameters ...
//   RETURN_IF_ERROR(reducer.Finish());          // before the gradient norm
//
// With `overlap` a bucket's all-reduce starts as soon as every parameter in it
// is final and every earlier bucket has started: buckets start in index order
// on every replica, so the members of the dp group issue their collectives in
// the same order (the communicator's contract) whatever the schedule. Without
// `overlap` Finish starts every bucket (in order) and waits: the same buckets,
// reduced after the backward.
//
// `late` parameters are those whose gradient is still changed after the
// backward: the tied embedding's copies (summed over the embedding group) and,
// with sequence parallelism, the LayerNorm partial sums (summed over tp). Sums
// over those groups and over dp commute, but an in-place sum must not run on a
// buffer that a pending dp reduction owns, and each must run exactly once: so
// late parameters get trailing buckets of their own that only Finish starts,
// after the caller's syncs.
//
// Compression and tensor parallelism. Tensor parallelism replicates some
// parameters on every rank of a tp group (LayerNorms, row-parallel output
// biases, the position embedding: ShardLayout::replicated()) and splits the
// others. A replicated parameter's gradient is bitwise the same on every tp
// rank (with sequence parallelism once the caller has summed its partials
// over tp, before Finish), so an exact dp sum keeps the copies identical. A
// compressor decides per bucket (int8's block scales, Top-K's picks and
// adaptive K, PowerSGD's factors, fp16's dynamic scale): in a bucket that
// also held split parameters, whose gradients differ across tp ranks, those
// decisions, and so the replicated parameters' updates, would differ, and the
// copies would drift apart. So when the sync compresses, a bucket never mixes
// the two kinds: each kind is filled up to the capacity on its own, and the
// buckets are numbered in the order they become ready (by the position of
// their last parameter in reverse order of use). Every tp rank then holds the
// same replicated buckets, with the same gradients, residuals and ring order,
// and computes the same compressed sums. Uncompressed buckets are unchanged
// (an exact sum is elementwise), and at tp 1 every parameter is replicated,
// so the buckets are those of Fill there too.
//
// Progress. The local backend advances async collectives on its own progress
// threads (core/comm/local/progress_pool.h). Open MPI's nonblocking
// collectives only advance inside MPI calls, and the MPI backend is built for
// one thread calling MPI under a lock (MpiLock), so instead of a progress
// thread competing for that lock and the 2 cores, Poll() calls
// CommHandle::Progress() on every pending handle: one MPI_Test pass over the
// backend's queues. The stage model calls it after every weight-gradient pass,
// the compute loop's natural checkpoints.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "data_parallel/compression/gradient_sync.h"
#include "data_parallel/compression/gradient_sync_options.h"

namespace trident::data_parallel {

struct BucketOptions {
  // Bucket capacity in MiB of fp32 gradient (the layout's grad_bucket_mb), > 0.
  double bucket_mb = 25;
  // Start each bucket's reduction as soon as its gradients are final.
  bool overlap = true;
  // ZeRO stage (0 to 3; see "ZeRO" below). Ignored when dp is 1.
  int zero_stage = 0;
  // Where stages 2 and 3 zero and accumulate their buffers (required for them).
  const ExecContext* ctx = nullptr;
  // How an all-reduced bucket is summed: algorithm and compression
  // (data_parallel/compression/gradient_sync.h). Unused by ZeRO's reduce-scatters.
  GradientSyncOptions sync;
  // Stages 2 and 3: the model's layers in order of use, each the parameters
  // one weight pass writes (LayerStarting / LayerDone are called with them).
  // Buckets then hold whole layers, never part of one, so that a weight pass
  // writes one pooled bucket; a parameter of several layers (the tied
  // embedding, written by the head's pass and by the embedding's) keeps a
  // full buffer of its own, reduced once after the backward, and the late
  // parameters of each layer get a (full) bucket of their own. Empty: every
  // parameter is a layer of its own.
  std::vector<ParameterList> layers;
  // ZeRO 3: the dtype of the value shards and of the gathered layers, i.e. of
  // the model's parameter values: fp32, or bf16 / fp16 under mixed precision
  // (where the fp32 masters are optimizer state, not the reducer's).
  DType value_dtype = DType::kFloat32;
};

// Pool buffers a ZeRO 2-3 rank keeps for the gradients of pooled buckets:
// one accumulating the running weight pass's bucket, one whose
// reduce-scatter runs meanwhile (overlap). Reached only when a weight pass
// touches more than one pooled bucket (possible when `layers` is empty), the
// pool evicts a bound bucket early (reduce-scatters what it holds so far; it
// is bound again, zeroed, when written next: sums commute) and grows only if
// the running pass itself needs more buffers.
inline constexpr int kGradientPoolBuffers = 2;

// ZeRO stage 1 (Rajbhandari et al. 2020; Megatron's distributed optimizer):
// the dp group's rank r owns window r of every bucket (padded_numel / dp
// elements from r * padded_numel / dp). Buckets are reduce-scattered instead
// of all-reduced, in place as Megatron's distributed optimizer does: a
// bucket's `shard` is the owned window of its own buffer, which the
// reduce-scatter overwrites with the summed gradient (the other windows are
// left as they were and no longer read), so stage 1 holds exactly the
// gradient bytes of stage 0. The communicator allows it on both backends: the
// local one reduces each output slice from every member's matching input
// slice before writing it, and the MPI one, which must not pass overlapping
// buffers to MPI_Ireduce_scatter_block (and whose MPI_IN_PLACE form writes the
// result at the start of the buffer, not at the owned window), reduces into a
// transient 1 / dp scratch and copies it into the window on completion. The
// optimizer keeps state for, and updates, only the owned windows, then
// GatherParameters all-gathers the updated values through transient receive
// buffers (at most two buckets at a time), leaving the reduced gradients in
// place for GatherGradients.
//
// The optimizer works on per-parameter sub-windows (an OwnedWindow is the
// part of one parameter inside the owned window) rather than on flat value
// buffers: parameter values stay the model's own tensors (initialisation,
// checkpoints, exports and the model gather are unchanged), weight decay
// stays per parameter, and the price is one copy of the owned values into the
// all-gather's send buffer and one copy back out per step.
//
// ZeRO stage 2: gradients are sharded too. A pooled bucket (every bucket but
// the late ones and those of parameters in several layers) has no full buffer
// of its own, only its persistent `shard`: when a layer is about to write
// gradients of its parameters (LayerStarting), their bucket is bound to a
// zeroed buffer of the pool (kGradientPoolBuffers buffers, each of the largest
// pooled bucket's size) and its parameters' grads become views into it; once
// every parameter of the bucket has had its layer's pass since binding
// (LayerDone), the buffer is reduce-scattered in place (its owned window is
// the output) and, when that completes, the window is added to the bucket's
// shard and the buffer returns to the pool. Micro-batches: each micro-batch's
// W reduce-scatters its buckets, as DeepSpeed's stage 2 does (m times the
// reduce-scatter traffic of stage 1 for m micro-batches), because
// accumulating across micro-batches locally, as Megatron does, needs the full
// gradient buffer that stage 2 exists to drop. So a rank holds the shards
// (Ψ / dp to the padding), the full buffers of the late and shared buckets,
// and the pool: 2 x the largest pooled bucket, which with layer-aligned
// buckets (BucketOptions::layers) is about one layer each. Outside a W, the
// parameters' grads are stale views: read the gradients through the owned
// windows, or call GatherGradients.
//
// ZeRO stage 3 (Rajbhandari et al. 2020; DeepSpeed stage 3, FSDP): stage 2,
// and the parameter values are sharded too, with the same windows. After
// ShardParameters a rank keeps only `value_shard` of every bucket (its window
// of the bucket's flat values: exactly the elements its optimizer updates, so
// the post-step all-gather of stages 1 and 2 disappears) and every
// Parameter's `value` is an undefined tensor. The model brackets each use of
// a layer's values (forward F and input-gradient B; the weight-gradient W
// reads activations only) with NeedParameters / DoneWithParameters and
// announces the next layer with PrefetchParameters before computing the
// current one. Need all-gathers (asynchronously when prefetched) every bucket
// holding one of the parameters into a transient full buffer whose views
// become the values; Done releases a bucket when no layer uses it any more
// (a count per bucket: a bucket may hold parts of two layers). So a rank
// holds 1 / dp of the values (plus the last shard's padding) and, at any time,
// the buckets of the layer being computed and of the one prefetched. With
// BucketOptions::layers the buckets hold whole layers, so that is two layers'
// values (more when grad_bucket_mb packs several layers into a bucket; the
// trainer caps it at the largest layer). The gathers are issued in the same order on every replica
// because the replicas of a dp group run the same schedule. Between F and B
// of one micro-batch the layer is gathered again (as DeepSpeed and FSDP with
// reshard_after_forward do): 2 all-gathers of the values per micro-batch and
// one reduce-scatter of the gradients, i.e. 1.5x the bytes of an all-reduce
// for one micro-batch.
//
// Mixed precision (BucketOptions::value_dtype bf16 or fp16): the value shards,
// the gathers and the gathered layers are 16-bit, so the value all-gathers
// move half the bytes (the reduce-scatters stay fp32: gradients are fp32).
// The optimizer keeps the fp32 master of each owned window and, after every
// update, rounds it into the window's 16-bit `value` (the shard's view), as
// ZeRO 1-2 round it into the parameter.
struct OwnedWindow {
  Parameter* param = nullptr;
  int64_t offset = 0;  // First element, in the parameter's flat index.
  int64_t length = 0;
  Tensor grad;  // The dp-summed gradient of those elements (a view of the shard).
  int bucket = 0;
  int64_t shard_offset = 0;  // Where `grad` starts in the bucket's shard.
  // ZeRO 3: the owned values (a view of the bucket's value_shard, of
  // BucketOptions::value_dtype), which the optimizer updates in place (fp32)
  // or rounds its fp32 masters into (16-bit). Undefined under stages 1 and 2
  // (the values are the parameter's own).
  Tensor value;
};

struct GradientBucket {
  Tensor buffer;                   // Flat fp32 [padded_numel], zero padding at the end.
  std::vector<Parameter*> params;  // In the order they were placed (reverse of use).
  int64_t numel = 0;               // Elements the parameters occupy.
  bool late = false;               // Holds only late parameters.
  // ZeRO: this rank's window of the reduced gradient [padded_numel / dp]: a
  // view of `buffer`'s owned window, or, for a pooled bucket, a tensor of its own.
  Tensor shard;
  // ZeRO 2: the bucket has no buffer of its own (bound from the pool per W).
  bool pooled = false;
  // ZeRO 3: this rank's window of the flat values [padded_numel / dp], and,
  // while a layer uses the bucket, the gathered values [padded_numel].
  // Both of BucketOptions::value_dtype.
  Tensor value_shard;
  Tensor gathered;
  int users = 0;        // Need/Prefetch calls not yet matched by Done.
  int prefetched = 0;   // Prefetch calls not yet consumed by a Need.
  std::unique_ptr<comm::CommHandle> gather;  // In flight.
};

class GradientReducer {
 public:
  // Builds the buckets over `params` (listed in order of use, as a model lists
  // them) and makes every grad a view into its bucket (gradients start at zero).
  // `late` must be a subset of `params`. `dp` may be null or of size 1: the
  // buckets still exist (one gradient layout for every layout) and nothing is
  // reduced. Every grad must be a defined fp32 tensor on one device.
  static absl::StatusOr<std::unique_ptr<GradientReducer>> Create(const ParameterList& params,
                                                                 const ParameterList& late,
                                                                 comm::Communicator* dp,
                                                                 const BucketOptions& options);

  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;
  ~GradientReducer();

  // Forgets which gradients were final. Call after zeroing the gradients;
  // waits first for reductions a failed step left pending.
  void BeginStep();

  // `params`' gradients will not change again this step (their last weight
  // pass ran). Starts, with overlap, every bucket that became complete and
  // follows only started buckets. Late parameters and parameters of no bucket
  // are ignored here (Finish handles them). Also polls (Poll).
  void MarkFinal(const ParameterList& params);

  // Lets the pending reductions progress (see the file comment).
  void Poll();

  // ZeRO stage 2 (no-ops otherwise): a layer is about to write the gradients
  // of `params` / has written them, in any micro-batch's W.
  void LayerStarting(const ParameterList& params);
  void LayerDone(const ParameterList& params);

  // ZeRO stage 3 (no-ops otherwise). ShardParameters keeps this rank's
  // window of every value (the parameters' current values) and drops the
  // parameters' own tensors; call once, after the optimizer took its windows
  // and before the first forward. Prefetch starts the all-gathers of the
  // buckets holding `params`; Need makes their values usable (starting and
  // waiting as needed); every Prefetch and every Need is matched by one Done,
  // after which buckets nobody uses are freed. GatherAllParameters /
  // ReleaseAllParameters bracket whole-model reads (export); collective.
  absl::Status ShardParameters();
  void PrefetchParameters(const ParameterList& params);
  absl::Status NeedParameters(const ParameterList& params);
  void DoneWithParameters(const ParameterList& params);
  absl::Status GatherAllParameters();
  void ReleaseAllParameters();
  // Bytes of parameter values this rank holds now: under stage 3 the value
  // shards and the gathered buckets; otherwise every parameter's value.
  int64_t parameter_bytes() const;
  // The most bytes of parameter values held at once so far: under stage 3 the
  // shards plus the buckets gathered together during the passes (not counting
  // GatherAllParameters, an export); otherwise parameter_bytes().
  int64_t peak_parameter_bytes() const;
  // Buckets whose values are gathered now (stage 3).
  int gathered_buckets() const;

  // Starts every bucket not started yet, in order, then waits for all of
  // them. Returns the first failure.
  absl::Status Finish();

  // ZeRO stage in effect: the option's, or 0 when dp is 1 (nothing to shard).
  int zero_stage() const { return zero_stage_; }
  // ZeRO: the parts of parameters this rank owns, bucket by bucket, in
  // element order. Their `grad` hold the summed gradients after Finish.
  const std::vector<OwnedWindow>& owned_windows() const { return owned_; }
  // ZeRO: after the optimizer updated the owned windows, gives every replica
  // every updated value (one all-gather per bucket, in the values' dtype:
  // 16-bit under mixed precision) through transient send and receive
  // buffers, at most two buckets at a time.
  absl::Status GatherParameters(const ExecContext& ctx);
  // ZeRO: the full summed gradients in every parameter's grad (all-gathers
  // the shards), for inspection after a step (the model gather, tests).
  absl::Status GatherGradients();

  const std::vector<GradientBucket>& buckets() const { return buckets_; }
  int dp_size() const { return dp_size_; }
  // The bucket sums' algorithm, compression and their state (Top-K's K).
  const GradientSync& gradient_sync() const { return sync_; }
  // Checkpoints: the compressors' carried-over state of this rank's buckets
  // (GradientSync::ExportState), and its restore, checked against these
  // buckets' sizes (GradientSync::RestoreState).
  std::vector<BucketSyncState> ExportSyncState() const { return sync_.ExportState(); }
  absl::Status RestoreSyncState(const std::vector<BucketSyncState>& state);
  // fp32 gradient bytes this rank holds: buckets (padding included), shards
  // and, under stage 2, the pool.
  int64_t gradient_bytes() const;

  // When set, receives one line per event, in order: "final <name>" for each
  // parameter MarkFinal made final, "start <bucket>" when a bucket's reduction
  // starts, "reduce-scatter <bucket>" when ZeRO 2 reduces a micro-batch's
  // bucket, "finish" when Finish is called (after the backward and syncs).
  // For tests of the ordering; the log must outlive the reducer's use.
  void set_event_log(std::vector<std::string>* log) { log_ = log; }

 private:
  GradientReducer(comm::Communicator* dp, const BucketOptions& options);
  void StartReady();
  void Start(int bucket);
  // ZeRO 2.
  // `starting`: the pooled buckets the starting weight pass writes.
  void Bind(int bucket, const std::vector<int>& starting);
  void ReduceBound(int bucket);
  absl::Status CompleteOldest();
  int AcquirePooled(const std::vector<int>& starting);
  // The one place a bucket's reduction is issued: an all-reduce of `full`
  // (stage 0), or its reduce-scatter into `owned_window` (this rank's window
  // of `full`, in place). Stage 0 sums through the layout's GradientSync.
  std::unique_ptr<comm::CommHandle> IssueReduction(int bucket, const Tensor& full,
                                                   const Tensor& owned_window);
  // ZeRO 3.
  std::vector<int> BucketsOf(const ParameterList& params) const;
  void StartGather(int bucket);
  absl::Status CompleteGather(int bucket);
  void Release(int bucket);
  absl::flat_hash_map<const Parameter*, int> value_bucket_of_;  // Every parameter.
  bool values_sharded_ = false;
  bool gathering_all_ = false;
  int64_t peak_parameter_bytes_ = 0;
  int64_t max_padded_ = 0;

  comm::Communicator* dp_;
  GradientSync sync_;
  int dp_size_ = 1;
  int zero_stage_ = 0;
  std::vector<OwnedWindow> owned_;
  BucketOptions options_;
  std::vector<GradientBucket> buckets_;
  absl::flat_hash_map<const Parameter*, int> bucket_of_;  // Non-late parameters only.
  std::vector<int> remaining_;  // Per bucket: non-final parameters this step.
  absl::flat_hash_map<const Parameter*, bool> is_final_;  // This step.
  int next_to_start_ = 0;
  std::vector<std::unique_ptr<comm::CommHandle>> pending_;
  std::vector<std::string>* log_ = nullptr;
  // ZeRO 2 state.
  struct InFlight {
    int bucket;
    int pool_index;
    Tensor window;  // The buffer's owned window (the output), added to the shard.
    std::unique_ptr<comm::CommHandle> handle;
  };
  absl::flat_hash_map<const Parameter*, int> pooled_bucket_of_;
  std::vector<Tensor> pool_;
  std::vector<int> free_pool_;
  std::vector<int> bound_to_;                         // Per bucket: pool index or -1.
  std::vector<int64_t> bound_at_;                     // Per bucket: when bound (binds_).
  int64_t binds_ = 0;
  std::vector<int> done_since_bind_;                  // Per bucket.
  absl::flat_hash_map<const Parameter*, bool> done_;  // Since its bucket's binding.
  std::vector<InFlight> in_flight_;                   // Oldest first.
  absl::Status deferred_error_;
};

}  // namespace trident::data_parallel

#endif  // TRIDENT_DATA_PARALLEL_GRAD_BUCKETS_H_
