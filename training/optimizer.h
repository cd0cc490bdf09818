#ifndef TRIDENT_TRAINING_OPTIMIZER_H_
#define TRIDENT_TRAINING_OPTIMIZER_H_

// AdamW over a list of parameters: the optimizer state, the update, the global
// gradient norm for clipping, and the checkpoint adapters.
//
// A step of the trainer, per rank:
//   optimizer.ZeroGrad(ctx);
//   ... forward/backward over the micro-batches (gradients accumulate) ...
//   ... data-parallel gradient reduction ...
//   ASSIGN_OR_RETURN(double norm, optimizer.GradientNorm(ctx, reduce_over_model_parallel));
//   if (!std::isfinite(norm)) ... skip the step or stop: clipping cannot repair it ...
//   optimizer.Step(ctx, LearningRate(step, ...), ClipScale(norm, grad_clip));
//
// The optimizer does not own the parameters (the model does); the pointers in
// the ParameterList must outlive it. Its state tensors (exp_avg, exp_avg_sq) are
// fp32, shaped like each value, on the value's device, zero at the start.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/exec_context.h"
#include "core/parameter.h"
#include "core/tensor.h"
#include "training/checkpoint/tensor_blob.h"
#include "training/train_config.pb.h"

namespace trident::training {

// The hyper-parameters AdamW keeps for every step (the learning rate changes
// per step and is passed to Step).
struct AdamWSettings {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double epsilon = 1e-8;
  // Decoupled decay, applied to parameters whose Parameter::weight_decay is true.
  double weight_decay = 0.1;
};

AdamWSettings AdamWSettingsFrom(const OptimizerConfig& config);

// The factor gradients are scaled by so that their global norm is at most
// max_norm: min(1, max_norm / (norm + 1e-6)) as torch.nn.utils.clip_grad_norm_
// (ops::ClipCoefficient); 1 when max_norm is 0 (clipping off). A NaN or
// infinite norm gives NaN: there is no finite factor that repairs such
// gradients, and a NaN scale makes the problem visible instead of hiding it.
float ClipScale(double norm, double max_norm);

// Whether a parameter's gradient counts towards the global gradient norm on
// this rank (see AdamW::SetNormFilter).
using NormFilter = std::function<bool(const Parameter&)>;

// Replaces this rank's partial sum of squared gradients by the sum over the
// ranks that hold different parts of the model (an all-reduce over the
// model-parallel group: tensor x pipeline). Null on a single rank.
using SquaredNormReducer = std::function<absl::Status(double& sum_of_squares)>;

// The standard filter under tensor parallelism: sharded parameters count on
// every rank (each holds a different slice), replicated ones (LayerNorm,
// row-parallel biases: the same gradient on every tp rank) only on tp rank 0,
// so that the model-parallel sum counts each element once.
NormFilter CountReplicatedOnlyOnTensorRank0(int tensor_parallel_rank);

// A part of one parameter whose optimizer state this rank keeps (ZeRO stage
// 1, data_parallel/grad_buckets.h): elements [offset, offset + length) of the
// parameter's flat value, and the summed gradient of exactly those elements.
struct StateWindow {
  const Parameter* param = nullptr;
  int64_t offset = 0;
  int64_t length = 0;
  Tensor grad;
  // ZeRO stage 3: the window's values, kept here and not in the parameter
  // (whose value is undefined outside the layer's use). Then Step updates
  // these and checkpoints hold "param/<name>@<offset>" [length] per window
  // instead of the whole values. Undefined: the values are the parameter's.
  // Under mixed precision they are 16-bit (the model dtype) and Step rounds
  // the window's fp32 master into them (KeepFp32Masters).
  Tensor value;
};

class AdamW {
 public:
  // Every parameter needs a distinct non-empty name and defined, contiguous
  // fp32 value and grad tensors of one shape on the context's device;
  // otherwise INVALID_ARGUMENT naming the parameter. Settings are checked as
  // ValidateTrainConfig does (betas in [0, 1), epsilon > 0, decay >= 0).
  static absl::StatusOr<std::unique_ptr<AdamW>> Create(const ExecContext& ctx,
                                                       ParameterList params,
                                                       const AdamWSettings& settings);

  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // ZeRO stage 1: from now on keeps moments for, and updates, only `windows`
  // (parameters of this optimizer; each window's gradient is read from its
  // `grad`, not from the parameter). The moments are reset to zero: call
  // before the first step. GradientNorm then sums the windows' gradients, so
  // its reducer must also sum over the data-parallel group; checkpoints hold
  // the windows' moments ("adam_m/<name>@<offset>", [length]).
  absl::Status ShardState(const ExecContext& ctx, std::vector<StateWindow> windows);
  bool sharded() const { return !windows_.empty(); }
  // ZeRO 3: the windows hold the values (StateWindow::value).
  bool values_sharded() const { return values_sharded_; }
  // Bytes of the moments this optimizer keeps (both of them), on the device
  // or, when offloaded, on the host.
  int64_t state_bytes() const;

  // ZeRO-Offload (Ren et al. 2021; layout field cpu_offload). From now on the
  // optimizer state lives in host buffers of an allocator of its own
  // (host_allocator(): fp32 master values, the two moments, and a staging
  // buffer for the gradient, one set per parameter or ZeRO window) and Step
  // runs on the host:
  //   1. the gradient (shard) is copied device -> host staging buffer;
  //   2. AdamW updates the host master values and moments (a host context);
  //   3. the updated values are copied host -> device (the parameter, or the
  //      ZeRO 3 window), where the model and the ZeRO all-gathers read them.
  // The gradient norm is still taken on the device. The arithmetic is the
  // same kernel on the same fp32 numbers, so results are bitwise those of
  // the run without offload. Call after ShardState (whose windows it
  // offloads) and before the first step; LoadState refreshes the masters.
  //
  // On this CPU-only build "device" and "host" are both host memory: the path
  // is distinct (other buffers, other allocator, explicit staged copies) but
  // the copies are memcpy. On a GPU: the host buffers would be pinned
  // (cudaHostAlloc) so that the copies are DMA; the gradient copies would be
  // issued asynchronously on a side stream as each bucket's reduction
  // completes during the backward (overlapping the compute), the host Adam
  // would be a vectorised multi-threaded CPU kernel (DeepSpeed's CPUAdam),
  // and the value copies back would overlap the next step's first forward
  // (or, ZeRO-Offload's delayed parameter update, run one step behind); the
  // master copy would be fp32 while the device holds 16-bit values.
  absl::Status OffloadToHost(const ExecContext& ctx);
  bool offloaded() const { return host_ctx_ != nullptr; }
  // The host allocator of the offloaded state (null before OffloadToHost).
  const std::shared_ptr<Allocator>& host_allocator() const { return host_allocator_; }
  // Host bytes the offloaded state takes: masters, moments, gradient staging.
  int64_t host_bytes() const;

  // Mixed precision (Micikevicius et al. 2018): keeps an fp32 master copy of
  // every parameter's current (fp32) value as optimizer state and replaces
  // the parameter's value by a `model_dtype` (bf16 or fp16) copy, rounded to
  // nearest-even, which the model computes with. Gradients stay fp32 (the
  // model's weight-gradient GEMMs accumulate into them). From now on Step
  // updates the masters and rounds each updated master into its parameter's
  // value; checkpoints hold the masters as "param/<name>" (fp32, the format
  // is unchanged) and LoadState restores them and the rounded values. Call
  // once, after Create and before the first step (and before ShardState).
  //
  // ZeRO 1 and 2 (ShardState afterwards): the masters are sharded like the
  // moments, each rank keeping the fp32 master of its own windows only
  // (StateWindow::value, as ZeRO 3's values; checkpointed as
  // "param/<name>@<offset>"). Step rounds each updated window into the
  // parameter's value; the other windows arrive with the reducer's
  // GatherParameters, after every step and after LoadState. ZeRO 3: the
  // windows' `value`s given to ShardState are the reducer's 16-bit value
  // shards (of the model dtype); the optimizer keeps an fp32 master per
  // window in their place and rounds it into that shard after every update
  // and after LoadState. With OffloadToHost the host masters are the fp32
  // masters and AdamW runs there; the device keeps its fp32 masters as the
  // staging target that is rounded into the values (so offload moves the
  // moments off the device, not the masters).
  absl::Status KeepFp32Masters(const ExecContext& ctx, DType model_dtype);
  bool has_masters() const { return model_dtype_ != DType::kFloat32; }
  // Bytes of the fp32 master copies this rank keeps (0 without mixed precision).
  int64_t master_bytes() const;
  // The fp32 tensor AdamW updates for each parameter, in parameter order: its
  // master under mixed precision, else its value. Unsharded state only (local
  // SGD and gossip mix these across replicas, then CopyMastersToValues).
  std::vector<Tensor> Fp32Values() const;
  // Rounds every master into its parameter's value (no-op without masters).
  void CopyMastersToValues(const ExecContext& ctx) const;

  // grad = 0 for every parameter (gradients accumulate over micro-batches).
  void ZeroGrad(const ExecContext& ctx) const;

  // sqrt(sum of squared gradient elements) over the parameters the norm filter
  // admits, after `reduce` (when given) has combined the partial sums of the
  // model-parallel ranks. Data-parallel replicas hold equal gradients after
  // their reduction: do not sum over them. Computed in double; NaN or Inf when
  // a gradient is not finite (the caller decides what to do). Errors come only
  // from `reduce`.
  absl::StatusOr<double> GradientNorm(const ExecContext& ctx,
                                      const SquaredNormReducer& reduce = nullptr) const;

  // Decides, once, which parameters GradientNorm counts (default: all). With
  // tensor parallelism use CountReplicatedOnlyOnTensorRank0; with pipeline
  // parallelism and tied embeddings, also leave out the copy of the embedding
  // that the last stage holds.
  void SetNormFilter(const NormFilter& counts);

  // Whether every gradient element the next Step reads on this rank is
  // finite: the windows' gradients under ZeRO (the reduced shards), else
  // every parameter's, whatever the norm filter counts. Local: the caller
  // combines the ranks' verdicts (fp16's loss scaler).
  bool GradientsFinite(const ExecContext& ctx) const;
  bool CountsInNorm(int index) const { return counts_in_norm_[index]; }

  // One AdamW update of every parameter with this learning rate, gradients
  // multiplied by `grad_scale` first (clipping; loss-scale removal). Advances
  // step() by one before updating, so the first update uses step 1 in its bias
  // corrections (as PyTorch). `learning_rate` must be finite and >= 0 and
  // grad_scale finite (checked: the trainer must not step on a NaN norm).
  void Step(const ExecContext& ctx, double learning_rate, float grad_scale = 1.0f);

  // Updates taken so far (0 before the first Step).
  int64_t step() const { return step_; }
  // Sets the updates applied so far when they were applied elsewhere
  // (dp_sync=ps: by the server ranks, whose state the worker copied into
  // this optimizer's values and moments for a checkpoint).
  void set_step(int64_t step) { step_ = step; }
  const AdamWSettings& settings() const { return settings_; }
  const ParameterList& params() const { return params_; }
  // Per parameter, or per window when sharded.
  const Tensor& exp_avg(int index) const { return exp_avg_[index]; }
  const Tensor& exp_avg_sq(int index) const { return exp_avg_sq_[index]; }

  // ---- Checkpoints. ----
  // Tensor names in a checkpoint file.
  static std::string ParamName(const std::string& name) { return "param/" + name; }
  static std::string ExpAvgName(const std::string& name) { return "adam_m/" + name; }
  static std::string ExpAvgSqName(const std::string& name) { return "adam_v/" + name; }
  static constexpr char kStepName[] = "optimizer/step";  // int64 scalar
  // A ZeRO window's moment: "<prefixed name>@<offset>".
  static std::string WindowName(const std::string& prefixed, int64_t offset);

  // Appends "param/<name>", "adam_m/<name>" and "adam_v/<name>" for every
  // parameter, in parameter order, then "optimizer/step". The blobs borrow
  // memory: the tensors' own storage on the CPU, or host copies owned by this
  // optimizer otherwise; they stay valid until the next AppendStateBlobs, Step,
  // LoadState or the optimizer's destruction, and their bytes change when the
  // parameters do (write them before the next update).
  void AppendStateBlobs(std::vector<checkpoint::TensorBlob>& blobs) const;

  // Restores parameter values, optimizer state and the step from a checkpoint
  // written by AppendStateBlobs for the same parameters. Everything is checked
  // before anything is written, so on error the optimizer and the parameters
  // are unchanged: each of this optimizer's tensors must be present with this
  // rank's dtype and shape, "optimizer/step" an int64 scalar >= 0, and the set
  // must not hold "param/", "adam_m/" or "adam_v/" tensors of parameters this
  // optimizer does not have (a checkpoint of a different model or shard).
  // Other tensors (RNG state, data position) are ignored.
  absl::Status LoadState(const checkpoint::TensorSet& tensors);

 private:
  AdamW(ParameterList params, const AdamWSettings& settings, std::vector<Tensor> exp_avg,
        std::vector<Tensor> exp_avg_sq);

  ParameterList params_;
  AdamWSettings settings_;
  std::vector<Tensor> exp_avg_;
  std::vector<Tensor> exp_avg_sq_;
  std::vector<bool> counts_in_norm_;
  // Mixed precision: masters_[i] is parameter i's fp32 value (empty: none).
  std::vector<Tensor> masters_;  // unsharded; under ZeRO the windows' values
  DType model_dtype_ = DType::kFloat32;  // 16-bit: masters are kept
  // The context the masters were made on (LoadState rounds them into values).
  std::unique_ptr<ExecContext> master_ctx_;
  // The fp32 value AdamW updates for parameter i: its master or its value.
  const Tensor& UpdatedValue(size_t i) const {
    return masters_.empty() ? params_[i]->value : masters_[i];
  }
  // ZeRO: the windows (exp_avg_[k] belongs to windows_[k]) and each one's
  // parameter index.
  std::vector<StateWindow> windows_;
  std::vector<int> window_param_;
  bool values_sharded_ = false;
  // ZeRO 3 under mixed precision: per window, the 16-bit values ShardState was
  // given (windows_[k].value is then the fp32 master rounded into them).
  // Empty otherwise (under ZeRO 1-2 masters round into the parameters).
  std::vector<Tensor> window_model_values_;
  // ZeRO-Offload: per state unit (window when sharded, else parameter), the
  // host master values and gradient staging buffer; exp_avg_/exp_avg_sq_ are
  // then host tensors too.
  std::shared_ptr<Allocator> host_allocator_;
  std::unique_ptr<ExecContext> host_ctx_;
  std::vector<Tensor> host_master_;
  std::vector<Tensor> host_grad_;
  // The device value and gradient of state unit k.
  Tensor DeviceValue(size_t k) const;
  Tensor DeviceGrad(size_t k) const;
  void RefreshMasters(const ExecContext& ctx);
  int64_t step_ = 0;
  // Host copies of device tensors for AppendStateBlobs.
  mutable std::vector<std::vector<float>> host_copies_;
};

}  // namespace trident::training

#endif  // TRIDENT_TRAINING_OPTIMIZER_H_
