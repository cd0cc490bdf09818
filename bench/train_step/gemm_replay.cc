#include "bench/train_step/gemm_replay.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "core/check.h"
#include "core/ops/elementwise.h"
#include "core/random.h"

namespace trident::bench {

using ops::GemmCall;
using ops::Trans;

GemmRecorder::GemmRecorder(int num_phases)
    : seconds_(static_cast<size_t>(num_phases), 0.0), counts_(static_cast<size_t>(num_phases), 0) {
  TRIDENT_CHECK(num_phases >= 1) << "GemmRecorder needs at least one phase, got " << num_phases;
}

void GemmRecorder::set_phase(int phase) {
  TRIDENT_CHECK(phase >= 0 && phase < static_cast<int>(seconds_.size()))
      << "phase " << phase << " outside [0, " << seconds_.size() << ")";
  phase_ = phase;
}

double GemmRecorder::total_seconds() const {
  return std::accumulate(seconds_.begin(), seconds_.end(), 0.0);
}

int64_t GemmRecorder::total_count() const {
  return std::accumulate(counts_.begin(), counts_.end(), int64_t{0});
}

void GemmRecorder::ResetTimes() {
  std::fill(seconds_.begin(), seconds_.end(), 0.0);
  std::fill(counts_.begin(), counts_.end(), 0);
}

void GemmRecorder::BeforeGemm(const GemmCall& call) {
  if (recording_) calls_.push_back(call);
  // Last, so that the bookkeeping above is not timed.
  started_ = std::chrono::steady_clock::now();
}

void GemmRecorder::AfterGemm(const GemmCall& /*call*/) {
  const auto now = std::chrono::steady_clock::now();
  seconds_[phase_] += std::chrono::duration<double>(now - started_).count();
  ++counts_[phase_];
}

DType GemmReplay::OutputDType(const GemmCall& call, DType model_dtype) {
  const bool weight_gradient = call.trans_a == Trans::kYes && call.beta != 0.0f;
  return weight_gradient ? DType::kFloat32 : model_dtype;
}

GemmReplay::GemmReplay(const ExecContext& ctx, std::vector<GemmCall> calls, DType model_dtype)
    : calls_(std::move(calls)) {
  TRIDENT_CHECK(ctx.device().is_cpu()) << "GemmReplay fills its operands on the CPU";
  TRIDENT_CHECK(model_dtype == DType::kFloat32 || model_dtype == DType::kBFloat16 ||
                model_dtype == DType::kFloat16)
      << "GemmReplay: model dtype " << DTypeName(model_dtype) << " is not fp32, bf16 or fp16";
  operands_.reserve(calls_.size());
  for (const GemmCall& call : calls_) {
    // Stored shapes: op(a) is [m, k], op(b) is [k, n].
    const bool ta = call.trans_a == Trans::kYes, tb = call.trans_b == Trans::kYes;
    Operands ops;
    ops.a = Operand(ctx, model_dtype, call.batched, call.batch, ta ? call.k : call.m, ta ? call.m : call.k,
                    call.row_stride_a, call.batch_stride_a);
    ops.b = Operand(ctx, model_dtype, call.batched, call.batch, tb ? call.n : call.k, tb ? call.k : call.n,
                    call.row_stride_b, call.batch_stride_b);
    ops.c = Operand(ctx, OutputDType(call, model_dtype), call.batched, call.batch, call.m, call.n,
                    call.row_stride_c, call.batch_stride_c);
    operands_.push_back(std::move(ops));
  }
}

Tensor GemmReplay::Operand(const ExecContext& ctx, DType dtype, bool batched, int64_t batch, int64_t rows,
                           int64_t cols, int64_t row_stride, int64_t batch_stride) {
  TRIDENT_CHECK(row_stride >= cols)
      << "recorded row stride " << row_stride << " < " << cols << " columns";
  auto filled = [&](Shape shape) {
    Tensor t = Tensor::Empty(shape, DType::kFloat32);
    FillUniform(ctx, t, next_seed_++, "gemm_replay", -0.1f, 0.1f);
    if (dtype != DType::kFloat32) {
      // Rounded to the 16-bit dtype (to nearest even) by the storage decorator.
      Tensor rounded = Tensor::Empty(shape, dtype);
      ops::Copy(ctx, t, rounded);
      t = rounded;
    }
    buffer_bytes_ += static_cast<int64_t>(t.nbytes());
    return t;
  };
  if (!batched) return filled({rows, row_stride}).Slice(1, 0, cols);
  if (batch_stride > 0 && batch_stride % row_stride == 0 && batch_stride / row_stride >= rows) {
    // Matrices one after another, each in a block of batch_stride elements.
    return filled({batch, batch_stride / row_stride, row_stride})
        .Slice(1, 0, rows)
        .Slice(2, 0, cols);
  }
  if (batch_stride > 0 && batch_stride >= cols && row_stride % batch_stride == 0 &&
      row_stride / batch_stride >= batch) {
    // Matrices side by side inside each row (heads inside an activation row).
    return filled({rows, row_stride / batch_stride, batch_stride})
        .Slice(1, 0, batch)
        .Slice(2, 0, cols)
        .Transpose(0, 1);
  }
  ++approximated_layouts_;
  return filled({batch, rows, row_stride}).Slice(2, 0, cols);
}

void GemmReplay::RunOnce(const ExecContext& ctx) const {
  for (size_t i = 0; i < calls_.size(); ++i) {
    const GemmCall& call = calls_[i];
    const Operands& o = operands_[i];
    if (call.batched) {
      ops::BatchedGemm(ctx, o.a, call.trans_a, o.b, call.trans_b, o.c, call.alpha, call.beta);
    } else {
      ops::Gemm(ctx, o.a, call.trans_a, o.b, call.trans_b, o.c, call.alpha, call.beta);
    }
  }
}

double GemmReplay::total_flops() const {
  double flops = 0.0;
  for (const GemmCall& call : calls_) flops += call.Flops();
  return flops;
}

}  // namespace trident::bench
