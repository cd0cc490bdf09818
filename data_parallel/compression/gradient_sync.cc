#include "data_parallel/compression/gradient_sync.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"
#include "core/dtype.h"
#include "data_parallel/compression/int8_codec.h"
#include "data_parallel/compression/scaled_half_codec.h"
#include "data_parallel/compression/topk.h"

namespace trident::data_parallel {
namespace {

absl::string_view ModeName(GradientCompression mode) {
  switch (mode) {
    case GradientCompression::kNone:
      return "none";
    case GradientCompression::kBf16:
      return "bf16";
    case GradientCompression::kFp16:
      return "fp16";
    case GradientCompression::kTopK:
      return "topk";
    case GradientCompression::kInt8:
      return "int8";
    case GradientCompression::kPowerSgd:
      return "powersgd";
  }
  return "unknown";
}

// Lossy codecs would turn a NaN or infinity into a plausible number (int8,
// Top-K's ordering) or spread it: refuse to compress one.
absl::Status CheckFinite(GradientCompression mode, int bucket, absl::Span<const float> gradient) {
  for (size_t i = 0; i < gradient.size(); ++i) {
    if (!std::isfinite(gradient[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("gradient_compression=", ModeName(mode), ": bucket ", bucket, " element ",
                       i, " is ", gradient[i], " before compression; non-finite gradients are "
                       "not compressed"));
    }
  }
  return absl::OkStatus();
}

// Local SGD and gossip: the replica's gradient of its own rows, unsummed
// (exact for n a power of two, one rounding otherwise).
absl::Status ScaleToReplicaMean(const comm::Communicator& dp, comm::Buffer gradient) {
  if (gradient.dtype != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dp_sync=local_sgd/gossip scales fp32 gradients; got ", DTypeName(gradient.dtype)));
  }
  const float n = static_cast<float>(dp.size());
  float* g = static_cast<float*>(gradient.data);
  for (int64_t i = 0; i < gradient.count; ++i) g[i] *= n;
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<comm::CommHandle> GradientSync::StartSum(comm::Communicator& dp, int bucket,
                                                         comm::Buffer gradient) {
  if (options_.replica_local) return comm::CompletedHandle(ScaleToReplicaMean(dp, gradient));
  if (options_.compression == GradientCompression::kNone) {
    return comm::AllReduceByAlgorithmAsync(dp, gradient, comm::ReduceOp::kSum, options_.algorithm);
  }
  if (gradient.dtype != DType::kFloat32) {
    return comm::CompletedHandle(absl::InvalidArgumentError(
        absl::StrCat("gradient_compression=", ModeName(options_.compression), ": bucket ", bucket,
                     " holds ", DTypeName(gradient.dtype), "; compression takes fp32 gradients")));
  }
  return comm::CompletedHandle(Compressed(
      dp, bucket, absl::MakeSpan(static_cast<float*>(gradient.data), gradient.count)));
}

absl::Span<const float> GradientSync::residual(int bucket) const {
  if (const PowerSgdBucket* p = powersgd(bucket); p != nullptr) return p->residual();
  const auto it = residuals_.find(bucket);
  if (it == residuals_.end()) return {};
  return it->second;
}

std::vector<float>& GradientSync::ResidualOf(int bucket, int64_t size) {
  std::vector<float>& residual = residuals_[bucket];
  // -0, the identity of float addition: the first step's v = g + r is g
  // itself, bit for bit (a +0 residual would turn g's -0s into +0s).
  if (residual.empty()) residual.assign(size, -0.0f);
  return residual;
}

PowerSgdBucket& GradientSync::PowerSgdOf(int bucket, int64_t size) {
  auto it = powersgd_.find(bucket);
  if (it == powersgd_.end()) {
    const auto described = matrices_.find(bucket);
    it = powersgd_
             .try_emplace(bucket, size,
                          described == matrices_.end() ? std::vector<BucketMatrix>()
                                                       : described->second,
                          options_.powersgd_rank, options_.powersgd_start_step,
                          /*seed=*/static_cast<uint64_t>(bucket) * 1000003u)
             .first;
  }
  return it->second;
}

AdaptiveK& GradientSync::AdaptiveKOf(int bucket) {
  return adaptive_k_
      .try_emplace(bucket, options_.topk_min_ratio, options_.topk_max_ratio,
                   options_.topk_sparsity_ema)
      .first->second;
}

std::vector<BucketSyncState> GradientSync::ExportState() const {
  absl::btree_map<int, BucketSyncState> by_bucket;
  const auto entry = [&by_bucket](int bucket) -> BucketSyncState& {
    BucketSyncState& state = by_bucket[bucket];
    state.bucket = bucket;
    return state;
  };
  for (const auto& [bucket, residual] : residuals_) entry(bucket).residual = residual;
  for (const auto& [bucket, adaptive] : adaptive_k_) {
    if (adaptive.started()) entry(bucket).topk_sparsity = adaptive.sparsity();
  }
  for (const auto& [bucket, p] : powersgd_) {
    BucketSyncState& state = entry(bucket);
    state.residual.assign(p.residual().begin(), p.residual().end());
    state.powersgd_steps = p.steps();
    state.powersgd_q = p.q();
  }
  std::vector<BucketSyncState> result;
  result.reserve(by_bucket.size());
  for (auto& [bucket, state] : by_bucket) result.push_back(std::move(state));
  return result;
}

absl::Status GradientSync::RestoreState(const std::vector<BucketSyncState>& state,
                                        absl::Span<const int64_t> bucket_sizes) {
  const auto refuse = [](int bucket, absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("gradient compression state of bucket ", bucket, ": ", what));
  };
  // Checked first: PowerSGD's shapes by a trial restore into a scratch bucket.
  for (const BucketSyncState& s : state) {
    if (s.bucket < 0 || s.bucket >= static_cast<int>(bucket_sizes.size())) {
      return refuse(s.bucket, absl::StrCat("no such bucket (this rank has ", bucket_sizes.size(),
                                           ")"));
    }
    const int64_t size = bucket_sizes[s.bucket];
    if (!s.residual.empty() && static_cast<int64_t>(s.residual.size()) != size) {
      return refuse(s.bucket, absl::StrCat("the residual has ", s.residual.size(),
                                           " elements; the bucket has ", size));
    }
    if (!s.powersgd_steps.has_value() && options_.compression == GradientCompression::kPowerSgd &&
        !s.residual.empty()) {
      return refuse(s.bucket, "a residual without PowerSGD's step count and Q's");
    }
    if (s.powersgd_steps.has_value()) {
      if (options_.compression != GradientCompression::kPowerSgd) {
        return refuse(s.bucket, "PowerSGD state, but this run does not use PowerSGD");
      }
      const auto described = matrices_.find(s.bucket);
      PowerSgdBucket trial(size,
                           described == matrices_.end() ? std::vector<BucketMatrix>()
                                                        : described->second,
                           options_.powersgd_rank, options_.powersgd_start_step, /*seed=*/0);
      absl::Status shapes = trial.Restore(*s.powersgd_steps, s.powersgd_q, s.residual);
      if (!shapes.ok()) return refuse(s.bucket, shapes.message());
    }
  }
  residuals_.clear();
  adaptive_k_.clear();
  powersgd_.clear();
  for (const BucketSyncState& s : state) {
    const int64_t size = bucket_sizes[s.bucket];
    if (s.powersgd_steps.has_value()) {
      absl::Status restored =
          PowerSgdOf(s.bucket, size).Restore(*s.powersgd_steps, s.powersgd_q, s.residual);
      if (!restored.ok()) return restored;  // Checked above; cannot happen.
      continue;
    }
    if (!s.residual.empty()) residuals_[s.bucket] = s.residual;
    if (s.topk_sparsity.has_value()) AdaptiveKOf(s.bucket).Restore(*s.topk_sparsity);
  }
  return absl::OkStatus();
}

absl::Status GradientSync::Compressed(comm::Communicator& dp, int bucket,
                                      absl::Span<float> gradient) {
  const GradientCompression mode = options_.compression;
  if (absl::Status s = CheckFinite(mode, bucket, gradient); !s.ok()) return s;
  const comm::Buffer buffer = comm::MakeBuffer(gradient);
  switch (mode) {
    case GradientCompression::kNone:
      break;
    case GradientCompression::kBf16:
    case GradientCompression::kFp16: {
      const bool fp16 = mode == GradientCompression::kFp16;
      const ScaledHalfCodec codec(fp16 ? DType::kFloat16 : DType::kBFloat16, options_.scaling,
                                  options_.static_scale);
      if (absl::Status s = comm::RingAllReduce(dp, buffer, codec); !s.ok()) return s;
      // A static scale too large for fp16 overflows to infinity on the wire:
      // fail the step rather than train on it.
      for (size_t i = 0; i < gradient.size(); ++i) {
        if (!std::isfinite(gradient[i])) {
          return absl::FailedPreconditionError(absl::StrCat(
              "gradient_compression=", ModeName(mode), " with compression_scaling=static and "
              "scale ", options_.static_scale, ": bucket ", bucket, " element ", i,
              " overflowed to ", gradient[i], " on the wire; lower the scale or use "
              "compression_scaling=dynamic"));
        }
      }
      return absl::OkStatus();
    }
    case GradientCompression::kInt8: {
      std::vector<float>& residual = ResidualOf(bucket, static_cast<int64_t>(gradient.size()));
      Int8QuantizeWithErrorFeedback(dp.size(), gradient, absl::MakeSpan(residual));
      return comm::RingAllReduce(dp, buffer, Int8Codec());
    }
    case GradientCompression::kTopK:
      return TopK(dp, bucket, gradient);
    case GradientCompression::kPowerSgd:
      return PowerSgdOf(bucket, static_cast<int64_t>(gradient.size()))
          .Sum(dp, options_.algorithm, gradient);
  }
  return absl::InternalError(absl::StrCat("unknown gradient compression ", static_cast<int>(mode)));
}

absl::Status GradientSync::TopK(comm::Communicator& dp, int bucket, absl::Span<float> gradient) {
  const int64_t d = static_cast<int64_t>(gradient.size());
  std::vector<float>& residual = ResidualOf(bucket, d);
  int64_t k = KOfRatio(options_.topk_ratio, d);
  if (options_.topk_adaptive) {
    // Sparsity of v = g + r, the vector the selection sees.
    std::vector<float> v(gradient.begin(), gradient.end());
    for (int64_t i = 0; i < d; ++i) v[i] += residual[i];
    std::vector<float> mean = {
        static_cast<float>(MeasuredSparsity(v, options_.topk_sparsity_threshold))};
    if (absl::Status s = dp.AllReduce(comm::MakeBuffer(absl::MakeSpan(mean)), comm::ReduceOp::kAvg);
        !s.ok()) {
      return s;
    }
    k = AdaptiveKOf(bucket).Next(mean[0], d);
  }
  topk_k_[bucket] = k;
  std::vector<int32_t> indices;
  std::vector<float> values;
  TopKWithErrorFeedback(gradient, absl::MakeSpan(residual), k, indices, values);
  return SparseAllGatherSum(dp, indices, values, gradient);
}

}  // namespace trident::data_parallel
