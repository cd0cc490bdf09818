#ifndef TRIDENT_PLANNING_PLANNER_H_
#define TRIDENT_PLANNING_PLANNER_H_

// The performance model behind //tools:plan (DESIGN.md, "Performance
// model"): step time and memory per rank of a TrainConfig's layout on a
// described machine (planning/hardware.proto), from first principles, each
// number with the formula and inputs that produced it (Plan::terms).
//
// Per transformer layer and micro-batch on one rank (b micro-batch, s
// sequence, h hidden, f ffn, a heads, t = tensor_parallel):
//   GEMMs forward (each timed alone on the hardware's efficiency curve):
//     QKV 2bsh(3h)/t, projection 2bsh^2/t, MLP 2 x 2bshf/t,
//     attention scores QK^T 2bs^2h/t and PV 2bs^2h/t (batched over heads).
//   Backward for inputs (B): the same GEMMs again (attention: both operands'
//   gradients, 2x); backward for weights (W): the four linear GEMMs again.
//   Elementwise (memory-bound) forward: kReplicatedPasses bsh elements
//   (LayerNorms, bias+dropout+residual; / t only with sequence parallelism),
//   kSplitPasses bsh/t (bias-GELU on f = 4h, QKV transposes) and
//   kScorePasses ba s^2/t (scale-mask-softmax, dropout); backward twice that.
//   Recomputation: FULL adds a forward (with its tp collectives) to B;
//   SELECTIVE adds the attention core (scores, PV, their elementwise work).
//   tp collectives: 2 all-reduces of bsh elements in F, 2 in B (sequence
//   parallel: all-gather + reduce-scatter pairs, the same ring bytes).
// The last stage adds the output head (2bshV'/t per pass) and its logits.
// These per-chunk F/B/W durations replay the layout's own schedule
// (pipeline::ReplaySchedule), pp p2p costing alpha + bsh bytes (/t with SP)
// on the link pp spans. Then the data-parallel gradient traffic (ring
// all-reduce 2(n-1)/n x bytes + 2(n-1) alpha per bucket; ZeRO 1/2 as
// reduce-scatter + all-gather, the same bytes; ZeRO 3 1.5x), overlapped with
// the backward when overlap_grad_reduce (only what exceeds the last
// micro-batch's backward is exposed), and the AdamW step (memory-bound).
// Ranks sharing cores (CPU hardware, hardware.proto's cores_per_node): each
// rank's rate is its threads' cores, and the step is at least the node's busy
// core-seconds (every rank's F/B/W, p2p copies, dp reduction and optimizer
// step, times its threads) over the node's cores: with 8 one-thread ranks on
// 2 cores, the work of all 8 queues for 2 cores, bubbles filled by other
// ranks' work.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "planning/hardware.pb.h"
#include "training/precision.h"
#include "training/train_config.pb.h"

namespace trident::planning {

// The job's number format: training/train_config.proto's enum, named by
// training/precision.h (the one home of "fp32", "bf16", "fp16").
using Precision = training::Precision;
using training::ParsePrecision;
using training::PrecisionName;

// Elementwise passes per layer forward (elements read + written, in units of
// one activation tensor), see above.
inline constexpr double kReplicatedPasses = 11.0;
inline constexpr double kSplitPasses = 14.0;
inline constexpr double kScorePasses = 4.5;

struct MemoryPlan {
  double parameters = 0;
  double gradients = 0;
  double optimizer_state = 0;
  double activations = 0;
  // Buffers the collectives need besides the above: none in this trainer
  // (ZeRO 1 reduce-scatters in place; ZeRO 2/3's pool of bucket buffers is
  // in `gradients`, as training::EstimateStageMemory counts it). Kept as a
  // field of --json, which scripts read.
  double communication_buffers = 0;
  int stage = 0;  // the pipeline stage these belong to (the largest total)
  double total() const {
    return parameters + gradients + optimizer_state + activations + communication_buffers;
  }
};

// One line of --explain: a named quantity, its value and where it came from.
struct Term {
  std::string name;
  double value = 0;
  std::string unit;
  std::string formula;
};

struct Plan {
  double step_time_s = 0;
  double tokens_per_s = 0;
  double mfu = 0;                     // model FLOPs (training/flops.h) / peak
  double model_flops_per_token = 0;   // 6N + 12LhT
  double hardware_flops_per_step = 0; // what the devices execute, recomputation included
  double pipeline_makespan_s = 0;     // the replayed schedule
  double bubble_fraction = 0;         // idle / makespan, worst stage
  double dp_reduce_s = 0;             // gradient traffic, whole
  double dp_exposed_s = 0;            // the part not hidden by the backward
  double optimizer_s = 0;
  // Hardware with cores_per_node: the node's busy core-seconds over its
  // cores (the step takes at least this long); 0 otherwise.
  double shared_cores_step_s = 0;
  // The same hardware: the job's busy core-seconds per step (all nodes), what
  // the trainer's cpu_time_ms measures on the local backend; 0 otherwise.
  double busy_core_seconds = 0;
  // Communication payload of one step, all ranks together (as the trainer's
  // metrics count it: training/metrics.h, comm_bytes).
  double comm_bytes_per_step = 0;
  int world_size = 0;
  double peak_flops_per_device = 0;
  MemoryPlan memory;
  std::vector<Term> terms;
};

// Seconds of one GEMM of `flops` at matrix rate `rate` (the curve above).
double GemmSeconds(double flops, double rate, const Hardware& hardware);
// Ring all-reduce of `bytes` over n devices: 2(n-1) alpha + 2(n-1)/n bytes/bw.
double RingAllReduceSeconds(int n, double bytes, const LinkClass& link);
// Ring all-gather or reduce-scatter (bytes = the full result): (n-1) alpha +
// (n-1)/n bytes/bw.
double RingAllGatherSeconds(int n, double bytes, const LinkClass& link);
// The dense matrix rate for `precision`; 0 when the hardware has none.
double MatrixFlops(const Hardware& hardware, Precision precision);

// The plan for `config` (its layout validated for its own world size,
// tensor x pipeline x data; no limit from this machine). On hardware with
// cores_per_node, each rank computes on `threads_per_rank` cores (0: as the
// trainer picks them, the node's cores over its ranks, at least 1); ignored
// otherwise.
absl::StatusOr<Plan> PlanStep(const training::TrainConfig& config, const Hardware& hardware,
                              Precision precision, int threads_per_rank = 0);

// Reads a Hardware textproto file.
absl::StatusOr<Hardware> LoadHardware(const std::string& path);

// {"step_time_s": ..., "memory_bytes_per_rank": {...}, ...}
std::string PlanToJson(const Plan& plan);
// The terms, one per line: name = value unit   [formula].
std::string PlanToText(const Plan& plan);

}  // namespace trident::planning

#endif  // TRIDENT_PLANNING_PLANNER_H_
