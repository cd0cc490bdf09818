#include "planning/planner.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"
#include "google/protobuf/text_format.h"
#include "pipeline/schedule.h"
#include "pipeline/simulator.h"
#include "tensor_parallel/param_count.h"
#include "topology/layer_split.h"
#include "topology/layout_validation.h"
#include "training/flops.h"
#include "training/memory_estimate.h"
#include "training/train_config.h"
#include "transformer/block.h"
#include "transformer/model_config.h"

namespace trident::planning {
namespace {

using topology::ParallelLayout;

pipeline::ScheduleKind KindOf(topology::PipelineSchedule schedule) {
  switch (schedule) {
    case topology::GPIPE:
      return pipeline::ScheduleKind::kGPipe;
    case topology::INTERLEAVED_1F1B:
      return pipeline::ScheduleKind::kInterleaved1F1B;
    case topology::ZERO_BUBBLE_H1:
      return pipeline::ScheduleKind::kZeroBubbleH1;
    default:
      return pipeline::ScheduleKind::kOneFOneB;
  }
}

// Whether every group of dimension `dim` ("tp", "dp", "pp") lies inside one
// node under the layout's rank order (the first name varies fastest).
bool WithinNode(const ParallelLayout& layout, absl::string_view dim, int devices_per_node) {
  int64_t stride = 1;
  for (absl::string_view name : absl::StrSplit(layout.rank_order(), '-')) {
    const int64_t size = name == "tp"   ? layout.tensor_parallel()
                         : name == "pp" ? layout.pipeline_parallel()
                                        : layout.data_parallel();
    if (name == dim) {
      if (size == 1) return true;
      const int64_t span = stride * size;
      return span <= devices_per_node && devices_per_node % span == 0;
    }
    stride *= size;
  }
  return false;
}

const LinkClass& LinkFor(const ParallelLayout& layout, absl::string_view dim,
                         const Hardware& hardware, std::string* name) {
  const bool intra = WithinNode(layout, dim, hardware.devices_per_node());
  *name = intra ? "intra_node" : "inter_node";
  return intra ? hardware.intra_node() : hardware.inter_node();
}

std::string Gb(double bytes) { return absl::StrFormat("%.4g GB", bytes / 1e9); }

}  // namespace

double MatrixFlops(const Hardware& hardware, Precision precision) {
  switch (precision) {
    case training::FP32:
      return hardware.fp32_flops();
    case training::BF16:
      return hardware.bf16_flops();
    case training::FP16:
      return hardware.fp16_flops();
  }
  return 0;
}

double GemmSeconds(double flops, double rate, const Hardware& hardware) {
  if (flops <= 0) return 0;
  return hardware.gemm_overhead_s() + flops / (hardware.gemm_peak_efficiency() * rate);
}

double RingAllReduceSeconds(int n, double bytes, const LinkClass& link) {
  if (n <= 1) return 0;
  return 2.0 * (n - 1) * link.alpha_s() +
         2.0 * (n - 1) / n * bytes / link.bandwidth_bytes_per_s();
}

double RingAllGatherSeconds(int n, double bytes, const LinkClass& link) {
  if (n <= 1) return 0;
  return (n - 1) * link.alpha_s() + static_cast<double>(n - 1) / n * bytes /
                                        link.bandwidth_bytes_per_s();
}

absl::StatusOr<Hardware> LoadHardware(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read hardware file ", path));
  std::stringstream text;
  text << in.rdbuf();
  Hardware hardware;
  if (!google::protobuf::TextFormat::ParseFromString(text.str(), &hardware)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a trident.planning.Hardware textproto"));
  }
  return hardware;
}

absl::StatusOr<Plan> PlanStep(const training::TrainConfig& config, const Hardware& hw,
                              Precision precision, int threads_per_rank) {
  const auto& model = config.model();
  ParallelLayout layout = config.layout();
  RETURN_IF_ERROR(topology::DeriveMicroBatches(&layout));
  const int t = layout.tensor_parallel();
  const int p = layout.pipeline_parallel();
  const int d = layout.data_parallel();
  const int v = layout.virtual_pipeline_stages();
  const int m = layout.num_micro_batches();
  const int world = t * p * d;
  const int64_t seq = config.data().seq_length();
  RETURN_IF_ERROR(
      topology::ValidateLayout(layout, world, training::ModelDimensionsFor(model, seq)));

  const double unit_rate = MatrixFlops(hw, precision);
  if (!(unit_rate > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hardware ", hw.device_name(), " has no ", PrecisionName(precision), " matrix rate"));
  }
  if (!(hw.memory_bandwidth_bytes_per_s() > 0) || !(hw.memory_efficiency() > 0) ||
      !(hw.gemm_peak_efficiency() > 0) || hw.devices_per_node() < 1 ||
      !(hw.intra_node().bandwidth_bytes_per_s() > 0) ||
      !(hw.inter_node().bandwidth_bytes_per_s() > 0) || hw.cores_per_node() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hardware ", hw.device_name(),
        ": memory_bandwidth_bytes_per_s, memory_efficiency, gemm_peak_efficiency, link "
        "bandwidths must be > 0, devices_per_node >= 1 and cores_per_node >= 0"));
  }
  if (threads_per_rank < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads per rank ", threads_per_rank, " must be >= 0 (0: as the trainer "
                     "picks them)"));
  }
  // Ranks sharing cores (hardware.proto): a rank computes on its threads,
  // one core each; by default the trainer's choice, the node's cores split
  // among its ranks (core/exec_context.h, CpuThreadsPerRank).
  const int cores = hw.cores_per_node();
  const int ranks_per_node = std::min(world, hw.devices_per_node());
  const int nodes = (world + hw.devices_per_node() - 1) / hw.devices_per_node();
  const int threads =
      cores == 0 ? 1
                 : std::min(cores, threads_per_rank > 0 ? threads_per_rank
                                                        : std::max(1, cores / ranks_per_node));
  const double rate = unit_rate * threads;

  Plan plan;
  plan.world_size = world;
  auto term = [&plan](std::string name, double value, std::string unit, std::string formula) {
    plan.terms.push_back({std::move(name), value, std::move(unit), std::move(formula)});
  };

  const bool fp32 = precision == training::FP32;
  const double act_bytes = fp32 ? 4 : 2;
  const double h = model.hidden_size();
  const double f = transformer::FfnHiddenSize(model);
  const double a = model.num_heads();
  const double T = seq;
  const double N = static_cast<double>(layout.micro_batch_size()) * seq;  // tokens per mb
  const double vocab = topology::PaddedVocabSize(model.vocab_size(), t);
  const bool sp = layout.sequence_parallel();
  const auto recompute = layout.recompute();
  const double mem_rate = hw.memory_bandwidth_bytes_per_s() * hw.memory_efficiency();
  auto G = [&](double flops) { return GemmSeconds(flops, rate, hw); };

  term("precision", act_bytes, "bytes/activation element",
       absl::StrCat(PrecisionName(precision), "; matrix rate ", absl::StrFormat("%.4g", rate),
                    " FLOP/s per device (", hw.device_name(), ")"));
  term("world_size", world, "devices",
       absl::StrFormat("tp %d x pp %d x dp %d; micro-batch %d x %d micro-batches, v=%d", t, p,
                       d, layout.micro_batch_size(), m, v));
  if (cores > 0) {
    term("threads_per_rank", threads, "cores",
         absl::StrFormat("%s; a rank's matrix rate is %d x %.4g FLOP/s; %d ranks share %d cores "
                         "per node",
                         threads_per_rank > 0 ? "given" : "cores / ranks per node, at least 1",
                         threads, unit_rate, ranks_per_node, cores));
  }

  // ---- One layer, one micro-batch, one rank. ----
  const double f_qkv = 2 * N * h * 3 * h / t, f_proj = 2 * N * h * h / t;
  const double f_mlp = 2 * N * h * f / t, f_att = 2 * N * T * h / t;
  const double linear_s = G(f_qkv) + G(f_proj) + 2 * G(f_mlp);
  const double attention_s = 2 * G(f_att);
  const double linear_flops = f_qkv + f_proj + 2 * f_mlp;
  term("layer_gemm_forward_s", linear_s + attention_s, "s",
       absl::StrFormat("sum of t(F) = %.3g s + F / (%.3g x rate) over QKV 2Nh(3h)/t=%.4g, proj "
                       "2Nh^2/t=%.4g, MLP 2x 2Nhf/t=%.4g, QK^T and PV 2NTh/t=%.4g FLOPs "
                       "(N=%g tokens)",
                       hw.gemm_overhead_s(), hw.gemm_peak_efficiency(), f_qkv, f_proj, f_mlp,
                       f_att, N));
  for (auto [name, flops] : {std::pair<const char*, double>{"qkv", f_qkv}, {"mlp", f_mlp},
                             {"attention_scores", f_att}}) {
    term(absl::StrCat("gemm_efficiency_", name), flops / (rate * G(flops)), "of peak",
         "F / (rate x t(F))");
  }
  const double elem_fwd_bytes =
      act_bytes * (kReplicatedPasses * N * h / (sp ? t : 1) + kSplitPasses * N * h / t +
                   kScorePasses * N * a * T / t);
  const double elem_fwd_s = elem_fwd_bytes / mem_rate;
  const double score_s = act_bytes * kScorePasses * N * a * T / t / mem_rate;
  term("layer_elementwise_forward_s", elem_fwd_s, "s",
       absl::StrFormat("%g bytes x (%g Nh%s + %g Nh/t + %g NaT/t) / (%.4g B/s x %g); backward 2x",
                       act_bytes, kReplicatedPasses, sp ? "/t" : "", kSplitPasses, kScorePasses,
                       hw.memory_bandwidth_bytes_per_s(), hw.memory_efficiency()));
  std::string tp_link_name;
  const LinkClass& tp_link = LinkFor(layout, "tp", hw, &tp_link_name);
  const double tp_bytes = N * h * act_bytes;
  const double tp_one = RingAllReduceSeconds(t, tp_bytes, tp_link);
  const double tp_pass_s = 2 * tp_one;
  term("layer_tp_comm_per_pass_s", tp_pass_s, "s",
       absl::StrFormat("2 x %s of Nh x %g = %s over %d devices, %s link (alpha %.3g s, %.4g B/s): "
                       "2(n-1) alpha + 2(n-1)/n bytes/bw each; forward 2, backward 2",
                       sp ? "(all-gather + reduce-scatter)" : "ring all-reduce", act_bytes,
                       Gb(tp_bytes), t, tp_link_name, tp_link.alpha_s(),
                       tp_link.bandwidth_bytes_per_s()));

  const double layer_F = linear_s + attention_s + elem_fwd_s + tp_pass_s;
  double layer_B = linear_s + 2 * attention_s + 2 * elem_fwd_s + tp_pass_s;
  const double layer_W = linear_s;
  double layer_flops = 3 * linear_flops + 3 * 2 * f_att;
  std::string recompute_note = "none";
  if (recompute == topology::Recompute::FULL) {
    layer_B += layer_F;
    layer_flops += linear_flops + 2 * f_att;
    recompute_note = "FULL: B reruns the forward (with its tp collectives)";
  } else if (recompute == topology::Recompute::SELECTIVE) {
    layer_B += attention_s + score_s;
    layer_flops += 2 * f_att;
    recompute_note = "SELECTIVE: B reruns QK^T, softmax, dropout, PV";
  }
  term("layer_F_s", layer_F, "s", "GEMMs + elementwise + 2 tp collectives");
  term("layer_B_s", layer_B, "s",
       absl::StrCat("input-gradient GEMMs (attention 2x) + 2x elementwise + 2 tp collectives; "
                    "recompute ", recompute_note));
  term("layer_W_s", layer_W, "s", "weight-gradient GEMMs of QKV, proj, MLP");

  // Output head (last model chunk): logits GEMM per pass, fp32 softmax.
  const double f_head = 2 * N * h * vocab / t;
  const double head_elem_s = 4.0 * 3 * N * vocab / t / mem_rate;
  const double head_F = G(f_head) + head_elem_s, head_B = G(f_head) + head_elem_s,
               head_W = G(f_head);
  term("head_F_s", head_F, "s",
       absl::StrFormat("2NhV'/t = %.4g FLOPs (V'=%g padded) + 3 fp32 passes over NV'/t; B the "
                       "same, W the GEMM",
                       f_head, vocab));

  // ---- Per stage: parameters, durations. ----
  const int chunks_total = p * v;
  std::vector<std::vector<double>> chunk_F(p, std::vector<double>(v)),
      chunk_B(p, std::vector<double>(v)), chunk_W(p, std::vector<double>(v));
  std::vector<int> stage_layers(p, 0), stage_max_chunk_layers(p, 0);
  std::vector<double> stage_params(p, 0);
  double flops_per_mb_all_chunks = 0;
  for (int s = 0; s < p; ++s) {
    for (int c = 0; c < v; ++c) {
      const int layers = topology::ChunkLayers(layout, model.num_layers(), s, c).count;
      stage_layers[s] += layers;
      stage_max_chunk_layers[s] = std::max(stage_max_chunk_layers[s], layers);
      const int k = c * p + s;
      chunk_F[s][c] = layers * layer_F;
      chunk_B[s][c] = layers * layer_B;
      chunk_W[s][c] = layers * layer_W;
      flops_per_mb_all_chunks += layers * layer_flops;
      if (k == 0) chunk_F[s][c] += act_bytes * N * h / mem_rate;  // embedding lookup
      if (k == chunks_total - 1) {
        chunk_F[s][c] += head_F;
        chunk_B[s][c] += head_B;
        chunk_W[s][c] += head_W;
        flops_per_mb_all_chunks += 3 * f_head;
      }
    }
    tp::StageShape shape;
    shape.vocab_size = model.vocab_size();
    shape.padded_vocab = static_cast<int64_t>(vocab);
    shape.positions = model.context_length();
    shape.hidden = model.hidden_size();
    shape.ffn_hidden = static_cast<int64_t>(f);
    shape.num_heads = model.num_heads();
    shape.num_layers = stage_layers[s];
    shape.has_embedding = s == 0;
    shape.has_head = s == p - 1;
    ASSIGN_OR_RETURN(const tp::ParameterCount count, tp::StageParameterCountPerRank(shape, t));
    stage_params[s] = static_cast<double>(count.total());
  }
  plan.hardware_flops_per_step = flops_per_mb_all_chunks * t * m * d;

  // ---- The schedule, replayed. ----
  ASSIGN_OR_RETURN(pipeline::Schedule schedule,
                   pipeline::MakeSchedule(KindOf(layout.schedule()), p, m, v));
  std::vector<std::vector<double>> durations(p);
  for (int s = 0; s < p; ++s) {
    durations[s].reserve(schedule.stages[s].size());
    for (const pipeline::Action& action : schedule.stages[s]) {
      double duration = 0;
      if (action.kind == pipeline::ActionKind::kForward) duration = chunk_F[s][action.chunk];
      if (action.kind == pipeline::ActionKind::kBackwardInput) duration = chunk_B[s][action.chunk];
      if (action.kind == pipeline::ActionKind::kBackwardWeight) {
        duration = chunk_W[s][action.chunk];
      }
      durations[s].push_back(duration);
    }
  }
  std::string pp_link_name;
  const LinkClass& pp_link = LinkFor(layout, "pp", hw, &pp_link_name);
  const double p2p_bytes = N * h * act_bytes / (sp ? t : 1);
  const double p2p_s = p > 1 ? pp_link.alpha_s() + p2p_bytes / pp_link.bandwidth_bytes_per_s() : 0;
  ASSIGN_OR_RETURN(const pipeline::SimulationResult replay,
                   pipeline::ReplaySchedule(schedule, durations, p2p_s));
  plan.pipeline_makespan_s = replay.makespan;
  plan.bubble_fraction =
      *std::max_element(replay.bubble_fraction.begin(), replay.bubble_fraction.end());
  term("pp_p2p_s", p2p_s, "s",
       absl::StrFormat("alpha + Nh x %g%s = %s per micro-batch transfer, %s link", act_bytes,
                       sp ? " / t" : "", Gb(p2p_bytes), pp_link_name));
  term("pipeline_makespan_s", replay.makespan, "s",
       absl::StrFormat("pipeline::ReplaySchedule of %s, p=%d m=%d v=%d (%zu actions on stage 0) "
                       "with the F/B/W durations above",
                       pipeline::ScheduleKindName(schedule.kind), p, m, v,
                       schedule.stages[0].size()));
  term("bubble_fraction", plan.bubble_fraction, "", "worst stage: (makespan - busy) / makespan");

  // ---- Data parallel, optimizer, memory per stage. ----
  double grad_bytes_per_elem = fp32 ? 4 : 2;
  double comm_bytes_per_elem = grad_bytes_per_elem;
  switch (layout.gradient_compression()) {
    case topology::GradientCompression::BF16:
    case topology::GradientCompression::FP16:
      comm_bytes_per_elem = 2;
      break;
    case topology::GradientCompression::INT8:
      comm_bytes_per_elem = 1;
      break;
    case topology::GradientCompression::TOPK:
      comm_bytes_per_elem = layout.topk_ratio() * 8;  // fp32 value + int32 index
      break;
    default:
      break;
  }
  std::string dp_link_name;
  const LinkClass& dp_link = LinkFor(layout, "dp", hw, &dp_link_name);
  const int zero = layout.zero_stage();
  const double zero_factor = zero == 3 ? 1.5 : 1.0;
  const double bucket_bytes = layout.grad_bucket_mb() * 1024.0 * 1024.0;
  const double optimizer_traffic_bytes = 28;     // AdamW read p,g,m,v; write p,m,v
  double worst_exposed = 0, worst_dp = 0, worst_opt = 0;
  double dp_and_optimizer_all_stages = 0;  // per replica, for the cores' busy time
  MemoryPlan worst;
  // The config as planned (derived layout, the planner's precision), for
  // training::EstimateStageMemory.
  training::TrainConfig as_planned = config;
  *as_planned.mutable_layout() = layout;
  as_planned.set_precision(precision);
  const double logits_bytes = 2.0 * 4 * N * vocab / t;
  // The trainer's own stash per block (transformer/block.h, fp32), scaled to
  // this precision's activation bytes.
  const auto block_stash = [&](transformer::Recompute policy) {
    return act_bytes / 4.0 *
           static_cast<double>(transformer::BlockStashBytes(
               policy, layout.micro_batch_size(), seq, model.hidden_size(),
               transformer::FfnHiddenSize(model), model.num_heads(), layout.tensor_parallel(), sp));
  };
  const double block_none = block_stash(transformer::Recompute::kNone);
  const double block_selective = block_stash(transformer::Recompute::kSelective);
  const double block_full = block_stash(transformer::Recompute::kFull);
  // Payload bytes each rank issues per step (comm::CommStats' convention:
  // an all-reduce counts its buffer, an all-gather its output, a
  // reduce-scatter its input, a send or receive its message).
  const double nh_bytes = N * h * act_bytes;
  double job_comm_bytes = 0;
  for (int s = 0; s < p; ++s) {
    double rank_bytes = 0;
    const bool first = s == 0, last = s == p - 1;
    if (t > 1 && !sp) {
      // Per layer 2 all-reduces in F, 2 in B; the vocab-parallel embedding's
      // F all-reduce; the head's input-gradient all-reduce; the loss's 3 fp32
      // statistics per token (max, sum of exponentials, target logit).
      rank_bytes += m * nh_bytes * (4.0 * stage_layers[s] + (first ? 1 : 0) + (last ? 1 : 0));
    } else if (t > 1) {
      // Sequence parallel: per layer 2 all-gathers + 2 reduce-scatters in F,
      // the same in B, and the column-parallel inputs gathered again for W;
      // the embedding's reduce-scatter and its gradient's all-gather; the
      // head's gather, gradient reduce-scatter and W gather; the LayerNorm
      // gradients all-reduced once per step.
      rank_bytes += m * nh_bytes * (10.0 * stage_layers[s] + (first ? 2 : 0) + (last ? 3 : 0));
      rank_bytes += (2.0 * stage_layers[s] + (last ? 1 : 0)) * 2 * h * grad_bytes_per_elem;
    }
    if (t > 1 && last) rank_bytes += m * 3 * N * 4;
    if (p > 1) {
      // Each chunk's F output goes to the next chunk and its input gradient
      // back: a send and a receive per micro-batch on each side of a boundary.
      int boundary_sides = 0;
      for (int c = 0; c < v; ++c) {
        const int k = c * p + s;
        boundary_sides += (k < chunks_total - 1) + (k > 0);
      }
      rank_bytes += 2.0 * m * boundary_sides * p2p_bytes;
      // Tied embeddings: the first and last stages all-reduce the embedding's
      // gradient.
      if (model.tied_embeddings() && (first || last)) {
        rank_bytes += vocab / t * h * grad_bytes_per_elem;
      }
    }
    if (d > 1) {
      // ZeRO 0: one all-reduce of the gradients; 1: reduce-scatter + all-
      // gather of the values; 2: a reduce-scatter per micro-batch (only the
      // owned window is kept) + the all-gather; 3: per micro-batch the values
      // gathered for F and again for B and the gradients reduce-scattered (a
      // lower bound: a bucket spanning two layers is gathered for each).
      const double grads = stage_params[s] * comm_bytes_per_elem;
      rank_bytes += grads * (zero == 0   ? 1.0
                             : zero == 1 ? 2.0
                             : zero == 2 ? m + 1.0
                                         : 3.0 * m);
    }
    job_comm_bytes += rank_bytes * t * d;
  }
  plan.comm_bytes_per_step = job_comm_bytes;

  for (int s = 0; s < p; ++s) {
    const double bytes = stage_params[s] * comm_bytes_per_elem;
    const double buckets = std::max(1.0, std::ceil(stage_params[s] * grad_bytes_per_elem /
                                                   bucket_bytes));
    const double dp_s = zero_factor * buckets * RingAllReduceSeconds(d, bytes / buckets, dp_link);
    double window = 0;
    for (int c = 0; c < v; ++c) window += chunk_B[s][c] + chunk_W[s][c];
    const double exposed = layout.overlap_grad_reduce() ? std::max(0.0, dp_s - window) : dp_s;
    const double owned = stage_params[s] / (zero >= 1 ? d : 1);
    const double opt_s = owned * optimizer_traffic_bytes / mem_rate;
    dp_and_optimizer_all_stages += dp_s + opt_s;
    worst_dp = std::max(worst_dp, dp_s);
    worst_exposed = std::max(worst_exposed, exposed);
    worst_opt = std::max(worst_opt, opt_s);

    MemoryPlan mem;
    mem.stage = s;
    // Parameters, gradients and optimizer state as the trainer holds them
    // (data_parallel/grad_buckets.h): 16-bit values and fp32 gradients and
    // masters under bf16/fp16; ZeRO 1 reduce-scatters in place; ZeRO 2/3 keep
    // the pooled gradients' shards, the gradients kept in full (tied
    // embedding, SP LayerNorms) and 2 pool buffers of the largest bucket
    // (whole layers, up to the largest layer); ZeRO 3 a gathered layer next
    // to the prefetched one. The rule's one home is training/memory_estimate.h,
    // checked against measured memory; the planner's precision decides.
    ASSIGN_OR_RETURN(const training::MemoryEstimate state,
                     training::EstimateStageMemory(as_planned, s));
    mem.parameters = static_cast<double>(state.parameter_bytes);
    mem.gradients = static_cast<double>(state.gradient_bytes);
    mem.optimizer_state = static_cast<double>(state.optimizer_state_bytes);
    const double in_flight = replay.peak_in_flight[s];
    const double chunk_layers = stage_max_chunk_layers[s];
    if (recompute == topology::Recompute::FULL) {
      mem.activations = in_flight * chunk_layers * block_full + block_none;
    } else if (recompute == topology::Recompute::SELECTIVE) {
      mem.activations = in_flight * chunk_layers * block_selective;
    } else {
      mem.activations = in_flight * chunk_layers * block_none;
    }
    if (s == p - 1) mem.activations += logits_bytes;
    if (s == 0 || mem.total() > worst.total()) worst = mem;
  }
  plan.memory = worst;
  plan.dp_reduce_s = worst_dp;
  plan.dp_exposed_s = worst_exposed;
  plan.optimizer_s = worst_opt;
  term("dp_grad_reduce_s", worst_dp, "s",
       absl::StrFormat("%s%s over %d devices, %s link: per bucket 2(n-1) alpha + 2(n-1)/n "
                       "bytes/bw, %g bytes per gradient element on the wire, buckets of %g MiB",
                       zero == 0 ? "ring all-reduce" : "reduce-scatter + all-gather",
                       zero == 3 ? " x 1.5 (ZeRO 3 gathers parameters twice)" : "", d,
                       dp_link_name, comm_bytes_per_elem, layout.grad_bucket_mb()));
  term("comm_bytes_per_step", job_comm_bytes, "bytes",
       "payload every rank issues, summed (CommStats' convention): tp per layer 4 Nh (SP 10 Nh) "
       "per micro-batch + embedding and head, pp 2 per boundary side per micro-batch, tied "
       "embedding gradient, dp the gradients x (1, ZeRO 1: 2, ZeRO 2: m + 1, ZeRO 3: 3m, a lower bound)");
  term("dp_exposed_s", worst_exposed, "s",
       layout.overlap_grad_reduce()
           ? "overlap_grad_reduce: only what exceeds the last micro-batch's backward (B + W of "
             "the stage's chunks) is exposed"
           : "overlap_grad_reduce off: all of it after the backward");
  term("optimizer_step_s", worst_opt, "s",
       absl::StrFormat("AdamW: params owned (/dp under ZeRO >= 1) x %g bytes / (%.4g B/s x %g)",
                       optimizer_traffic_bytes, hw.memory_bandwidth_bytes_per_s(),
                       hw.memory_efficiency()));

  const double dedicated_step_s = plan.pipeline_makespan_s + plan.dp_exposed_s + plan.optimizer_s;
  plan.step_time_s = dedicated_step_s;
  if (cores > 0) {
    // Every rank of a node is busy for its stage's F/B/W time (tp collectives
    // included: the local backend's threads copy and reduce), its p2p copies,
    // its dp reduction and its optimizer step, on `threads` cores each; the
    // node's cores supply at most `cores` core-seconds per second.
    double replica_busy = dp_and_optimizer_all_stages +
                          2.0 * m * (chunks_total - 1) * p2p_s;
    for (int s = 0; s < p; ++s) replica_busy += replay.busy[s];
    const double node_core_seconds =
        replica_busy * t * d * threads * ranks_per_node / static_cast<double>(world);
    plan.shared_cores_step_s = node_core_seconds / cores;
    plan.busy_core_seconds = node_core_seconds * nodes;
    plan.step_time_s = std::max(dedicated_step_s, plan.shared_cores_step_s);
    term("shared_cores_step_s", plan.shared_cores_step_s, "s",
         absl::StrFormat("%d ranks x %d threads on %d cores: busy core-seconds of the node "
                         "(per replica: F/B/W %.4g s + p2p 2m(pv-1) x %.3g s + dp and optimizer "
                         "%.4g s; x tp %d x dp %d x %d threads) / %d cores",
                         ranks_per_node, threads, cores,
                         replica_busy - dp_and_optimizer_all_stages -
                             2.0 * m * (chunks_total - 1) * p2p_s,
                         p2p_s, dp_and_optimizer_all_stages, t, d, threads, cores));
  }
  const double tokens = static_cast<double>(layout.micro_batch_size()) * m * d * seq;
  plan.tokens_per_s = tokens / plan.step_time_s;
  plan.model_flops_per_token = training::GptFlopsPerToken(model, seq);
  // The job's peak: every device's rate; with shared cores, the cores its
  // threads can occupy (as the trainer's MFU counts them).
  const double peak_flops =
      cores > 0 ? unit_rate * nodes * std::min(cores, ranks_per_node * threads) : rate * world;
  plan.peak_flops_per_device = peak_flops / world;
  plan.mfu = training::ModelFlopsUtilization(plan.model_flops_per_token, plan.tokens_per_s,
                                             peak_flops);
  term("step_time_s", plan.step_time_s, "s",
       cores > 0 ? absl::StrFormat("max(pipeline makespan + exposed dp + optimizer step = %.4g "
                                   "s, shared_cores_step_s)",
                                   dedicated_step_s)
                 : std::string("pipeline makespan + exposed dp + optimizer step"));
  term("tokens_per_s", plan.tokens_per_s, "tokens/s",
       absl::StrFormat("global batch %g tokens / step time", tokens));
  term("mfu", plan.mfu, "",
       absl::StrFormat("(6N + 12LhT = %.4g FLOPs/token) x tokens/s / %.4g FLOP/s (%s)",
                       plan.model_flops_per_token, peak_flops,
                       cores > 0 ? "the cores the job's threads occupy" : "every device"));
  term("hardware_flops_per_device_s", plan.hardware_flops_per_step / plan.step_time_s / world,
       "FLOP/s", "all GEMM FLOPs executed (recomputation and padded vocabulary included)");

  const MemoryPlan& mem = plan.memory;
  const char* zero_rule = zero == 0 || d == 1 ? ""
                          : zero == 1       ? ", ZeRO 1: optimizer state / dp"
                          : zero == 2       ? ", ZeRO 2: + gradient shards and 2 bucket buffers"
                                            : ", ZeRO 3: + value shards and 2 gathered layers";
  term("memory_parameters", mem.parameters, "bytes",
       absl::StrFormat("stage %d: %.4g params/rank, training::EstimateStageMemory (%s values)",
                       mem.stage, stage_params[mem.stage], PrecisionName(precision)));
  term("memory_gradients", mem.gradients, "bytes", "fp32, training::EstimateStageMemory");
  term("memory_optimizer_state", mem.optimizer_state, "bytes",
       absl::StrFormat("AdamW m, v%s (fp32), training::EstimateStageMemory",
                       fp32 ? "" : ", master values"));
  term("memory_activations", mem.activations, "bytes",
       absl::StrFormat("peak in flight %d (replay) x %d layers x block (training/memory_estimate.h "
                       "formula x %g/4 B, recompute %s)%s",
                       replay.peak_in_flight[mem.stage], stage_max_chunk_layers[mem.stage],
                       act_bytes,
                       recompute == topology::Recompute::FULL        ? "FULL: layer input only, "
                                                                       "+ one layer recomputed"
                       : recompute == topology::Recompute::SELECTIVE ? "SELECTIVE: no NaT scores"
                                                                     : "NONE",
                       mem.stage == p - 1 ? " + fp32 logits and their gradient 2 x 4NV'/t" : ""));
  term("memory_communication_buffers", mem.communication_buffers, "bytes",
       "none: ZeRO 1 reduce-scatters in place, ZeRO 2/3's bucket pool is in gradients");
  term("memory_total", mem.total(), "bytes",
       absl::StrFormat("vs %s of device memory%s", Gb(hw.memory_bytes()), zero_rule));
  return plan;
}

std::string PlanToJson(const Plan& plan) {
  const MemoryPlan& m = plan.memory;
  return absl::StrFormat(
      "{\"step_time_s\": %.9g, \"tokens_per_s\": %.9g, \"mfu\": %.6g, "
      "\"model_flops_per_token\": %.9g, \"hardware_flops_per_device_per_s\": %.9g, "
      "\"pipeline_makespan_s\": %.9g, \"bubble_fraction\": %.6g, \"dp_reduce_s\": %.9g, "
      "\"dp_exposed_s\": %.9g, \"optimizer_s\": %.9g, \"shared_cores_step_s\": %.9g, "
      "\"busy_core_seconds\": %.9g, "
      "\"comm_bytes_per_step\": %.0f, \"world_size\": %d, "
      "\"memory_bytes_per_rank\": {\"parameters\": %.0f, \"gradients\": %.0f, "
      "\"optimizer_state\": %.0f, \"activations\": %.0f, \"communication_buffers\": %.0f, "
      "\"total\": %.0f, \"stage\": %d}}",
      plan.step_time_s, plan.tokens_per_s, plan.mfu, plan.model_flops_per_token,
      plan.hardware_flops_per_step / plan.step_time_s / plan.world_size,
      plan.pipeline_makespan_s, plan.bubble_fraction, plan.dp_reduce_s, plan.dp_exposed_s,
      plan.optimizer_s, plan.shared_cores_step_s, plan.busy_core_seconds, plan.comm_bytes_per_step, plan.world_size, m.parameters, m.gradients, m.optimizer_state,
      m.activations, m.communication_buffers, m.total(), m.stage);
}

std::string PlanToText(const Plan& plan) {
  std::string out;
  for (const Term& term : plan.terms) {
    absl::StrAppendFormat(&out, "%-32s = %-12.5g %-10s [%s]\n", term.name, term.value, term.unit,
                          term.formula);
  }
  return out;
}

}  // namespace trident::planning
