#include "training/optimizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/check.h"
#include "core/ops/elementwise.h"
#include "core/ops/optimizer.h"
#include "core/ops/reduction.h"
#include "core/status_macros.h"

namespace trident::training {
namespace {

// Checkpoint bytes are little-endian; the tensors' memory is copied as is.
static_assert(std::endian::native == std::endian::little);

std::vector<int64_t> ShapeVector(const Tensor& t) {
  return std::vector<int64_t>(t.shape().begin(), t.shape().end());
}

absl::Status CheckTensor(const ExecContext& ctx, const Parameter& p, const char* role,
                         const Tensor& t) {
  if (!t.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter '", p.name, "' has no ", role, " tensor"));
  }
  if (t.dtype() != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", p.name, "' ", role, " is ",
                                                   t.DebugString(),
                                                   "; AdamW keeps fp32 parameters"));
  }
  if (!t.is_contiguous()) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", p.name, "' ", role, " ",
                                                   t.DebugString(), " must be contiguous"));
  }
  if (!(t.device() == ctx.device())) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", p.name, "' ", role, " is on ",
                                                   t.device().ToString(),
                                                   ", the optimizer's context on ",
                                                   ctx.device().ToString()));
  }
  return absl::OkStatus();
}

absl::Status CheckSettings(const AdamWSettings& s) {
  auto unit = [](double x) { return x >= 0.0 && x < 1.0; };
  if (!unit(s.beta1) || !unit(s.beta2)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdamW betas (", s.beta1, ", ", s.beta2, ") must each be in [0, 1)"));
  }
  if (!(std::isfinite(s.epsilon) && s.epsilon > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdamW epsilon=", s.epsilon, " must be a finite number > 0"));
  }
  if (!(std::isfinite(s.weight_decay) && s.weight_decay >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdamW weight_decay=", s.weight_decay, " must be a finite number >= 0"));
  }
  return absl::OkStatus();
}

checkpoint::TensorBlob BlobOf(std::string name, const Tensor& t,
                              std::vector<std::vector<float>>& host_copies) {
  checkpoint::TensorBlob blob;
  blob.name = std::move(name);
  blob.dtype = DType::kFloat32;
  blob.shape = ShapeVector(t);
  if (t.device().is_cpu()) {
    blob.bytes = absl::MakeConstSpan(static_cast<const std::byte*>(t.raw_data()), t.nbytes());
  } else {
    // Moving a std::vector into the outer vector keeps its heap buffer, so the
    // span stays valid when host_copies grows.
    host_copies.push_back(t.ToVector<float>());
    const std::vector<float>& copy = host_copies.back();
    blob.bytes = absl::MakeConstSpan(reinterpret_cast<const std::byte*>(copy.data()),
                                     copy.size() * sizeof(float));
  }
  return blob;
}

void CopyBytesInto(const checkpoint::LoadedTensor& source, const Tensor& destination) {
  TRIDENT_CHECK_EQ(source.bytes.size(), destination.nbytes()) << source.name;
  if (destination.device().is_cpu()) {
    std::memcpy(destination.raw_data(), source.bytes.data(), source.bytes.size());
    return;
  }
  std::vector<float> values(static_cast<size_t>(destination.numel()));
  std::memcpy(values.data(), source.bytes.data(), source.bytes.size());
  destination.CopyFrom(values);
}

}  // namespace

AdamWSettings AdamWSettingsFrom(const OptimizerConfig& config) {
  AdamWSettings s;
  s.beta1 = config.beta1();
  s.beta2 = config.beta2();
  s.epsilon = config.epsilon();
  s.weight_decay = config.weight_decay();
  return s;
}

float ClipScale(double norm, double max_norm) {
  if (max_norm == 0.0) return 1.0f;
  if (!std::isfinite(norm)) return std::numeric_limits<float>::quiet_NaN();
  return ops::ClipCoefficient(norm, static_cast<float>(max_norm));
}

NormFilter CountReplicatedOnlyOnTensorRank0(int tensor_parallel_rank) {
  return [tensor_parallel_rank](const Parameter& p) {
    return !p.layout.replicated() || tensor_parallel_rank == 0;
  };
}

absl::StatusOr<std::unique_ptr<AdamW>> AdamW::Create(const ExecContext& ctx,
                                                     ParameterList params,
                                                     const AdamWSettings& settings) {
  RETURN_IF_ERROR(CheckSettings(settings));
  absl::flat_hash_set<std::string> names;
  std::vector<Tensor> exp_avg;
  std::vector<Tensor> exp_avg_sq;
  for (size_t i = 0; i < params.size(); ++i) {
    const Parameter* p = params[i];
    if (p == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("parameter ", i, " of the list is null"));
    }
    if (p->name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("parameter ", i, " has an empty name"));
    }
    if (!names.insert(p->name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter name '", p->name, "' appears twice in the list"));
    }
    RETURN_IF_ERROR(CheckTensor(ctx, *p, "value", p->value));
    RETURN_IF_ERROR(CheckTensor(ctx, *p, "grad", p->grad));
    if (p->grad.shape() != p->value.shape()) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameter '", p->name, "' has grad ", ShapeToString(p->grad.shape()),
                       " for value ", ShapeToString(p->value.shape()), "; they must match"));
    }
    exp_avg.push_back(Tensor::Zeros(p->value.shape(), DType::kFloat32, ctx.allocator()));
    exp_avg_sq.push_back(Tensor::Zeros(p->value.shape(), DType::kFloat32, ctx.allocator()));
  }
  return std::unique_ptr<AdamW>(
      new AdamW(std::move(params), settings, std::move(exp_avg), std::move(exp_avg_sq)));
}

AdamW::AdamW(ParameterList params, const AdamWSettings& settings, std::vector<Tensor> exp_avg,
             std::vector<Tensor> exp_avg_sq)
    : params_(std::move(params)),
      settings_(settings),
      exp_avg_(std::move(exp_avg)),
      exp_avg_sq_(std::move(exp_avg_sq)),
      counts_in_norm_(params_.size(), true) {}

namespace {

// ZeRO-Offload's staged copies between the device's tensors and the host
// buffers (same shape, fp32). On the CPU both are host memory: a copy between
// the two allocators' buffers. Otherwise a synchronous transfer through a
// host vector (on a GPU: cudaMemcpyAsync to pinned memory on a side stream).
void StageToHost(const ExecContext& ctx, const Tensor& device, const Tensor& host) {
  if (device.device().is_cpu()) {
    ops::Copy(ctx, device, host);
    return;
  }
  host.CopyFrom(device.ToVector<float>());
}

void StageToDevice(const ExecContext& ctx, const Tensor& host, const Tensor& device) {
  if (device.device().is_cpu()) {
    ops::Copy(ctx, host, device);
    return;
  }
  device.CopyFrom(host.ToVector<float>());
}

}  // namespace

Tensor AdamW::DeviceValue(size_t k) const {
  if (!sharded()) return UpdatedValue(k);  // the fp32 master under mixed precision
  const StateWindow& w = windows_[k];
  return values_sharded_ ? w.value : w.param->value.Flatten().Slice(0, w.offset, w.length);
}

Tensor AdamW::DeviceGrad(size_t k) const {
  return sharded() ? windows_[k].grad : params_[k]->grad;
}

void AdamW::RefreshMasters(const ExecContext& ctx) {
  for (size_t k = 0; k < host_master_.size(); ++k) {
    StageToHost(ctx, DeviceValue(k), host_master_[k]);
  }
}

absl::Status AdamW::OffloadToHost(const ExecContext& ctx) {
  if (offloaded()) return absl::FailedPreconditionError("the optimizer state is already offloaded");
  host_allocator_ = CpuAllocator::Create("optimizer/host");
  host_ctx_ = std::make_unique<ExecContext>(ExecContext::Cpu().WithAllocator(host_allocator_));
  const auto host_copy = [this, &ctx](const Tensor& t) {
    Tensor h = Tensor::Empty(t.shape(), DType::kFloat32, host_allocator_);
    StageToHost(ctx, t, h);
    return h;
  };
  for (size_t k = 0; k < exp_avg_.size(); ++k) {
    const Tensor value = DeviceValue(k);
    host_master_.push_back(host_copy(value));
    host_grad_.push_back(Tensor::Zeros(value.shape(), DType::kFloat32, host_allocator_));
    exp_avg_[k] = host_copy(exp_avg_[k]);
    exp_avg_sq_[k] = host_copy(exp_avg_sq_[k]);
  }
  return absl::OkStatus();
}

int64_t AdamW::host_bytes() const {
  return host_allocator_ == nullptr ? 0 : host_allocator_->bytes_in_use();
}

absl::Status AdamW::ShardState(const ExecContext& ctx, std::vector<StateWindow> windows) {
  if (offloaded()) {
    return absl::FailedPreconditionError("ShardState after OffloadToHost: shard first");
  }
  std::vector<Tensor> exp_avg;
  std::vector<Tensor> exp_avg_sq;
  std::vector<int> window_param;
  for (const StateWindow& w : windows) {
    const auto it = std::find(params_.begin(), params_.end(), w.param);
    if (it == params_.end()) {
      return absl::InvalidArgumentError("a state window's parameter is not one of the optimizer's");
    }
    const Parameter& p = **it;
    if (w.offset < 0 || w.length <= 0 || w.offset + w.length > p.value.numel() ||
        !w.grad.defined() || w.grad.numel() != w.length ||
        (w.value.defined() && w.value.numel() != w.length) ||
        w.value.defined() != windows.front().value.defined()) {
      return absl::InvalidArgumentError(absl::StrCat("state window [", w.offset, ", +", w.length,
                                                     ") does not fit parameter '", p.name, "'"));
    }
    // ZeRO 3: the window's values are the model's, so of the model's dtype.
    if (w.value.defined() && w.value.dtype() != model_dtype_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state window [", w.offset, ", +", w.length, ") of parameter '", p.name, "' holds ",
          DTypeName(w.value.dtype()), " values; the model's values are ",
          DTypeName(model_dtype_)));
    }
    window_param.push_back(static_cast<int>(it - params_.begin()));
    exp_avg.push_back(Tensor::Zeros({w.length}, DType::kFloat32, ctx.allocator()));
    exp_avg_sq.push_back(Tensor::Zeros({w.length}, DType::kFloat32, ctx.allocator()));
  }
  if (has_masters()) {
    // The masters become windows like the moments: this rank's share only.
    for (size_t k = 0; k < windows.size(); ++k) {
      StateWindow& w = windows[k];
      // ZeRO 3: the given 16-bit window becomes the rounding target.
      if (w.value.defined()) window_model_values_.push_back(w.value);
      w.value = Tensor::Empty({w.length}, DType::kFloat32, ctx.allocator());
      ops::Copy(ctx, masters_[window_param[k]].Flatten().Slice(0, w.offset, w.length), w.value);
    }
    masters_.clear();
  }
  values_sharded_ = !windows.empty() && windows.front().value.defined();
  windows_ = std::move(windows);
  window_param_ = std::move(window_param);
  exp_avg_ = std::move(exp_avg);
  exp_avg_sq_ = std::move(exp_avg_sq);
  return absl::OkStatus();
}

int64_t AdamW::state_bytes() const {
  int64_t bytes = 0;
  for (size_t k = 0; k < exp_avg_.size(); ++k) {
    bytes += static_cast<int64_t>(exp_avg_[k].nbytes() + exp_avg_sq_[k].nbytes());
  }
  return bytes;
}

std::string AdamW::WindowName(const std::string& prefixed, int64_t offset) {
  return absl::StrCat(prefixed, "@", offset);
}

absl::Status AdamW::KeepFp32Masters(const ExecContext& ctx, DType model_dtype) {
  if (model_dtype != DType::kBFloat16 && model_dtype != DType::kFloat16) {
    return absl::InvalidArgumentError(absl::StrCat("KeepFp32Masters: the model dtype ",
                                                   DTypeName(model_dtype),
                                                   " is not a 16-bit float (bf16 or fp16)"));
  }
  if (has_masters()) return absl::FailedPreconditionError("KeepFp32Masters called twice");
  if (sharded() || offloaded()) {
    return absl::UnimplementedError(
        "fp32 master weights with ZeRO sharding or offload are not supported yet");
  }
  if (step_ != 0) {
    return absl::FailedPreconditionError("KeepFp32Masters must come before the first step");
  }
  model_dtype_ = model_dtype;
  master_ctx_ = std::make_unique<ExecContext>(ctx);
  for (Parameter* p : params_) {
    masters_.push_back(p->value);  // The fp32 value becomes the master...
    p->value = Tensor::Empty(p->value.shape(), model_dtype, ctx.allocator());
  }
  CopyMastersToValues(ctx);  // ...and the parameter its rounded copy.
  return absl::OkStatus();
}

int64_t AdamW::master_bytes() const {
  if (!has_masters()) return 0;
  int64_t bytes = 0;
  for (const Tensor& m : masters_) bytes += static_cast<int64_t>(m.nbytes());
  for (const StateWindow& w : windows_) bytes += static_cast<int64_t>(w.value.nbytes());
  return bytes;
}

std::vector<Tensor> AdamW::Fp32Values() const {
  std::vector<Tensor> values;
  values.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) values.push_back(UpdatedValue(i));
  return values;
}

void AdamW::CopyMastersToValues(const ExecContext& ctx) const {
  if (!has_masters()) return;
  for (size_t i = 0; i < masters_.size(); ++i) ops::Copy(ctx, masters_[i], params_[i]->value);
  // ZeRO: this rank's windows (the reducer gathers the others'): into the
  // parameter's value, or under ZeRO 3 into the reducer's 16-bit value shard.
  for (size_t k = 0; k < windows_.size(); ++k) {
    const StateWindow& w = windows_[k];
    ops::Copy(ctx, w.value,
              window_model_values_.empty()
                  ? w.param->value.Flatten().Slice(0, w.offset, w.length)
                  : window_model_values_[k]);
  }
}

void AdamW::ZeroGrad(const ExecContext& ctx) const {
  for (const Parameter* p : params_) ops::Fill(ctx, p->grad, 0.0f);
}

bool AdamW::GradientsFinite(const ExecContext& ctx) const {
  // A sum of squares in double is finite exactly when every element is.
  std::vector<Tensor> grads;
  if (sharded()) {
    for (const StateWindow& w : windows_) grads.push_back(w.grad);
  } else {
    for (const Parameter* p : params_) grads.push_back(p->grad);
  }
  return std::isfinite(ops::MultiTensorSumOfSquares(ctx, grads));
}

void AdamW::SetNormFilter(const NormFilter& counts) {
  for (size_t i = 0; i < params_.size(); ++i) {
    counts_in_norm_[i] = counts == nullptr || counts(*params_[i]);
  }
}

absl::StatusOr<double> AdamW::GradientNorm(const ExecContext& ctx,
                                           const SquaredNormReducer& reduce) const {
  // One read-back for all the gradients (on a GPU, one host sync per step).
  std::vector<Tensor> grads;
  if (sharded()) {
    // Each element once: its owner's window.
    for (size_t k = 0; k < windows_.size(); ++k) {
      if (counts_in_norm_[window_param_[k]]) grads.push_back(windows_[k].grad);
    }
  } else {
    for (size_t i = 0; i < params_.size(); ++i) {
      if (counts_in_norm_[i]) grads.push_back(params_[i]->grad);
    }
  }
  double sum_of_squares = ops::MultiTensorSumOfSquares(ctx, grads);
  if (reduce != nullptr) RETURN_IF_ERROR(reduce(sum_of_squares));
  return std::sqrt(sum_of_squares);
}

void AdamW::Step(const ExecContext& ctx, double learning_rate, float grad_scale) {
  TRIDENT_CHECK(std::isfinite(learning_rate) && learning_rate >= 0.0)
      << "AdamW::Step: learning rate " << learning_rate;
  TRIDENT_CHECK(std::isfinite(grad_scale))
      << "AdamW::Step: gradient scale " << grad_scale
      << " (a non-finite gradient norm must be handled before stepping)";
  ++step_;
  host_copies_.clear();
  ops::AdamWOptions options;
  options.learning_rate = learning_rate;
  options.beta1 = settings_.beta1;
  options.beta2 = settings_.beta2;
  options.epsilon = settings_.epsilon;
  options.weight_decay = settings_.weight_decay;
  options.step = step_;
  options.grad_scale = grad_scale;
  if (offloaded()) {
    // ZeRO-Offload: gradient out, update on the host, values back.
    for (size_t k = 0; k < host_master_.size(); ++k) {
      const Parameter& p = sharded() ? *windows_[k].param : *params_[k];
      StageToHost(ctx, DeviceGrad(k), host_grad_[k]);
      ops::AdamWStep(*host_ctx_, host_master_[k], host_grad_[k], exp_avg_[k], exp_avg_sq_[k],
                     options, p.weight_decay ? ops::WeightDecay::kApply : ops::WeightDecay::kSkip);
      StageToDevice(ctx, host_master_[k], DeviceValue(k));
    }
    CopyMastersToValues(ctx);  // Mixed precision: the device masters into the values.
    return;
  }
  if (sharded()) {
    for (size_t k = 0; k < windows_.size(); ++k) {
      const StateWindow& w = windows_[k];
      ops::AdamWStep(ctx,
                     values_sharded_ ? w.value
                                     : w.param->value.Flatten().Slice(0, w.offset, w.length),
                     w.grad,
                     exp_avg_[k], exp_avg_sq_[k], options,
                     w.param->weight_decay ? ops::WeightDecay::kApply : ops::WeightDecay::kSkip);
    }
    CopyMastersToValues(ctx);
    return;
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Parameter& p = *params_[i];
    ops::AdamWStep(ctx, UpdatedValue(i), p.grad, exp_avg_[i], exp_avg_sq_[i], options,
                   p.weight_decay ? ops::WeightDecay::kApply : ops::WeightDecay::kSkip);
  }
  CopyMastersToValues(ctx);
}

void AdamW::AppendStateBlobs(std::vector<checkpoint::TensorBlob>& blobs) const {
  host_copies_.clear();
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i]->name;
    if (sharded()) {
      if (!values_sharded_) {
        blobs.push_back(BlobOf(ParamName(name), params_[i]->value, host_copies_));
      }
      continue;
    }
    blobs.push_back(BlobOf(ParamName(name), UpdatedValue(i), host_copies_));
    blobs.push_back(BlobOf(ExpAvgName(name), exp_avg_[i], host_copies_));
    blobs.push_back(BlobOf(ExpAvgSqName(name), exp_avg_sq_[i], host_copies_));
  }
  // ZeRO: this rank's shard of the moments, window by window.
  for (size_t k = 0; k < windows_.size(); ++k) {
    const StateWindow& w = windows_[k];
    if (values_sharded_) {
      blobs.push_back(BlobOf(WindowName(ParamName(w.param->name), w.offset), w.value,
                             host_copies_));
    }
    blobs.push_back(BlobOf(WindowName(ExpAvgName(w.param->name), w.offset), exp_avg_[k],
                           host_copies_));
    blobs.push_back(BlobOf(WindowName(ExpAvgSqName(w.param->name), w.offset), exp_avg_sq_[k],
                           host_copies_));
  }
  checkpoint::TensorBlob step;
  step.name = kStepName;
  step.dtype = DType::kInt64;
  step.shape = {};
  step.bytes = absl::MakeConstSpan(reinterpret_cast<const std::byte*>(&step_), sizeof(step_));
  blobs.push_back(std::move(step));
}

absl::Status AdamW::LoadState(const checkpoint::TensorSet& tensors) {
  // 1. Nothing in the set may belong to a parameter we do not have.
  absl::flat_hash_set<absl::string_view> ours;
  for (const Parameter* p : params_) ours.insert(p->name);
  for (const checkpoint::LoadedTensor& t : tensors.tensors()) {
    for (absl::string_view prefix : {"param/", "adam_m/", "adam_v/"}) {
      if (!absl::StartsWith(t.name, prefix)) continue;
      absl::string_view param_name = absl::string_view(t.name).substr(prefix.size());
      // A ZeRO window's moments: "<name>@<offset>".
      // (and under ZeRO 3 its values).
      if (prefix != "param/" || values_sharded_) {
        param_name = param_name.substr(0, param_name.rfind('@'));
      }
      if (!ours.contains(param_name)) {
        return absl::InvalidArgumentError(absl::StrCat(
            tensors.source(), " has tensor '", t.name, "' for parameter '", param_name,
            "', which this model (", params_.size(),
            " parameters) does not have: the checkpoint is of a different model or shard"));
      }
    }
  }
  // 2. Every tensor we need, with our dtype and shape.
  struct Target {
    const checkpoint::LoadedTensor* source;
    Tensor destination;
  };
  std::vector<Target> targets;
  targets.reserve(3 * params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i]->name;
    if (values_sharded_) continue;  // The windows' values, below.
    const std::vector<int64_t> shape = ShapeVector(params_[i]->value);
    std::vector<std::pair<std::string, Tensor>> wanted = {{ParamName(name), UpdatedValue(i)}};
    if (!sharded()) {
      wanted.push_back({ExpAvgName(name), exp_avg_[i]});
      wanted.push_back({ExpAvgSqName(name), exp_avg_sq_[i]});
    }
    for (const auto& [tensor_name, destination] : wanted) {
      ASSIGN_OR_RETURN(const checkpoint::LoadedTensor* source,
                       tensors.GetExpected(tensor_name, DType::kFloat32, shape));
      targets.push_back({source, destination});
    }
  }
  for (size_t k = 0; k < windows_.size(); ++k) {
    const StateWindow& w = windows_[k];
    std::vector<std::pair<std::string, Tensor>> wanted = {
        {WindowName(ExpAvgName(w.param->name), w.offset), exp_avg_[k]},
        {WindowName(ExpAvgSqName(w.param->name), w.offset), exp_avg_sq_[k]}};
    if (values_sharded_) {
      wanted.push_back({WindowName(ParamName(w.param->name), w.offset), w.value});
    }
    for (const auto& [tensor_name, destination] : wanted) {
      ASSIGN_OR_RETURN(const checkpoint::LoadedTensor* source,
                       tensors.GetExpected(tensor_name, DType::kFloat32, {w.length}));
      targets.push_back({source, destination});
    }
  }
  ASSIGN_OR_RETURN(const checkpoint::LoadedTensor* step_tensor,
                   tensors.GetExpected(kStepName, DType::kInt64, {}));
  TRIDENT_CHECK_EQ(step_tensor->bytes.size(), sizeof(int64_t));
  int64_t step = 0;
  std::memcpy(&step, step_tensor->bytes.data(), sizeof(step));
  if (step < 0) {
    return absl::InvalidArgumentError(absl::StrCat(tensors.source(), " has ", kStepName, "=",
                                                   step, "; it must be >= 0"));
  }
  // 3. Only now write.
  for (const Target& target : targets) CopyBytesInto(*target.source, target.destination);
  if (has_masters()) CopyMastersToValues(*master_ctx_);
  // ZeRO-Offload: the host masters take the restored values.
  if (offloaded()) RefreshMasters(*host_ctx_);
  step_ = step;
  host_copies_.clear();
  return absl::OkStatus();
}

}  // namespace trident::training
