#ifndef TRIDENT_BENCH_TRAIN_STEP_GEMM_REPLAY_H_
#define TRIDENT_BENCH_TRAIN_STEP_GEMM_REPLAY_H_

// The GEMMs of a training step, measured two ways:
// - in place: GemmRecorder, an ops::GemmObserver, times every ops::Gemm /
//   BatchedGemm call while the step runs (attributed to the phase the caller
//   names) and keeps the calls of the steps it is asked to record;
// - alone: GemmReplay runs exactly the recorded calls again (shapes,
//   transposes, row and batch strides, alpha, beta, order) on buffers of its
//   own, with nothing else in between. The step time over this time is the
//   step's non-GEMM overhead factor.
//
// Mixed precision (a 16-bit `model_dtype`): GemmCall records no dtypes, so the
// replay gives each call the dtypes the trainer's step uses: a and b 16-bit
// (parameters, activations, activation gradients), c 16-bit except for the
// weight gradients, which stay fp32 (AdamW::KeepFp32Masters); a weight
// gradient is recognised as the accumulating product with a transposed
// (x^T dy, beta != 0). The replay then runs through the same 16-bit conversion
// path as the step (core/ops/cpu/float16_storage.h): widen, fp32 GEMM, round.
//
// Each replayed call gets its own operands, so the replay touches as many
// distinct bytes as the step's GEMMs do and reuses nothing that the step could
// not reuse. Values are uniform in [-0.1, 0.1): finite, (practically) never
// denormal, and the beta = 1 accumulations stay small over many passes.

#include <chrono>
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/exec_context.h"
#include "core/ops/gemm.h"
#include "core/tensor.h"

namespace trident::bench {

class GemmRecorder : public ops::GemmObserver {
 public:
  // Phases are 0 .. num_phases - 1; calls count towards phase 0 until
  // set_phase says otherwise.
  explicit GemmRecorder(int num_phases);

  void set_phase(int phase);
  // While true, every call is appended to calls().
  void set_recording(bool recording) { recording_ = recording; }

  const std::vector<ops::GemmCall>& calls() const { return calls_; }
  // Time spent inside the GEMMs of `phase`, and their number, since the last
  // ResetTimes.
  double seconds(int phase) const { return seconds_[phase]; }
  int64_t count(int phase) const { return counts_[phase]; }
  double total_seconds() const;
  int64_t total_count() const;
  void ResetTimes();

  void BeforeGemm(const ops::GemmCall& call) override;
  void AfterGemm(const ops::GemmCall& call) override;

 private:
  std::vector<double> seconds_;
  std::vector<int64_t> counts_;
  std::vector<ops::GemmCall> calls_;
  int phase_ = 0;
  bool recording_ = false;
  std::chrono::steady_clock::time_point started_;
};

class GemmReplay {
 public:
  // Allocates and fills operands for every call (CPU context), in the dtypes
  // described above for `model_dtype` (all fp32 for kFloat32).
  GemmReplay(const ExecContext& ctx, std::vector<ops::GemmCall> calls,
             DType model_dtype = DType::kFloat32);

  // The dtype the replay gives `call`'s c for `model_dtype`: fp32 for the
  // weight gradients (accumulating, a transposed) and under fp32, else
  // `model_dtype`.
  static DType OutputDType(const ops::GemmCall& call, DType model_dtype);

  // Every call once, in the recorded order, on ctx's threads.
  void RunOnce(const ExecContext& ctx) const;

  const std::vector<ops::GemmCall>& calls() const { return calls_; }
  double total_flops() const;
  // Bytes of all replay operands (with their row padding).
  int64_t buffer_bytes() const { return buffer_bytes_; }
  // Batched calls whose batch stride could not be reproduced as recorded
  // (their batches are laid out one after another instead). Zero for the
  // layouts GEMMs use in practice: batches apart, or interleaved by columns
  // (heads inside an activation row).
  int approximated_layouts() const { return approximated_layouts_; }

 private:
  struct Operands {
    Tensor a, b, c;
  };
  // A view of `batch` (or, unbatched, one) [rows, cols] matrices with the
  // given row and batch strides, on a fresh filled buffer.
  Tensor Operand(const ExecContext& ctx, DType dtype, bool batched, int64_t batch, int64_t rows,
                 int64_t cols, int64_t row_stride, int64_t batch_stride);

  std::vector<ops::GemmCall> calls_;
  std::vector<Operands> operands_;
  int64_t buffer_bytes_ = 0;
  int approximated_layouts_ = 0;
  uint64_t next_seed_ = 1;
};

}  // namespace trident::bench

#endif  // TRIDENT_BENCH_TRAIN_STEP_GEMM_REPLAY_H_
