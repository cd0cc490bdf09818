// Tensor-parallel step benchmark on the CPU `local` backend: for each tp degree,
// one GPT forward + backward (the whole model as one stage, tp ranks as threads)
// per step; prints step time, the tp traffic per step per rank (counted by the
// communicator, next to Megatron's analytic count) and the share of the step
// each rank spends inside tp collectives.
//
//   bazel run -c opt //bench/tp_bench:tp_bench -- --tp=1,2,4
//
// Ranks are threads: with more ranks than cores they share cores, so the
// communication share includes waiting for peers that were descheduled.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/status/status.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/tp_bench/timed_communicator.h"
#include "core/comm/local/local_world.h"
#include "core/exec_context.h"
#include "core/status_macros.h"
#include "core/tensor.h"
#include "tensor_parallel/tp_group.h"
#include "transformer/gpt_stage.h"

ABSL_FLAG(std::string, tp, "1,2,4", "Comma-separated tensor-parallel degrees.");
ABSL_FLAG(int, vocab, 2048, "Vocabulary size (padded to a multiple of 128 * tp).");
ABSL_FLAG(int, hidden, 256, "Hidden size.");
ABSL_FLAG(int, heads, 8, "Attention heads.");
ABSL_FLAG(int, layers, 4, "Transformer blocks.");
ABSL_FLAG(int, batch, 4, "Sequences per step.");
ABSL_FLAG(int, seq, 128, "Tokens per sequence (also the context length).");
ABSL_FLAG(int, warmup, 1, "Untimed steps.");
ABSL_FLAG(int, steps, 5, "Timed steps.");
ABSL_FLAG(int, threads_per_rank, 1, "GEMM threads of each rank's ExecContext.");

namespace trident::bench {
namespace {

struct RankResult {
  double step_ms = 0;
  double comm_ms = 0;
  int64_t bytes = 0;
  int64_t calls = 0;
};

// Megatron's count per step per rank (see tests/tensor_parallel/comm_volume_test.cc).
int64_t AnalyticBytes(int64_t tokens, int64_t hidden, int64_t layers) {
  return 4 * (tokens * hidden * (4 * layers + 2) + 3 * tokens);
}

absl::Status Run() {
  std::vector<int> degrees;
  for (absl::string_view part : absl::StrSplit(absl::GetFlag(FLAGS_tp), ',')) {
    int d = 0;
    if (!absl::SimpleAtoi(part, &d) || d < 1) {
      return absl::InvalidArgumentError(absl::StrCat("--tp: '", part, "' is not a degree >= 1"));
    }
    degrees.push_back(d);
  }
  transformer::GptConfig config;
  config.set_vocab_size(absl::GetFlag(FLAGS_vocab));
  config.set_context_length(absl::GetFlag(FLAGS_seq));
  config.set_num_layers(absl::GetFlag(FLAGS_layers));
  config.set_num_heads(absl::GetFlag(FLAGS_heads));
  config.set_hidden_size(absl::GetFlag(FLAGS_hidden));
  const int batch = absl::GetFlag(FLAGS_batch), seq = absl::GetFlag(FLAGS_seq);
  const int64_t tokens = int64_t{batch} * seq;
  std::vector<int32_t> ids(tokens), targets(tokens);
  for (int64_t i = 0; i < tokens; ++i) {
    ids[i] = static_cast<int32_t>((i * 7919 + 13) % config.vocab_size());
    targets[i] = static_cast<int32_t>((i * 104729 + 7) % config.vocab_size());
  }
  const Tensor id_tensor = Tensor::FromVector(ids, {batch, seq});
  const Tensor target_tensor = Tensor::FromVector(targets, {batch, seq});
  const int warmup = absl::GetFlag(FLAGS_warmup), steps = absl::GetFlag(FLAGS_steps);

  std::printf("# GPT h=%d L=%d heads=%d vocab=%d, B=%d T=%d, fp32, local backend, %d GEMM "
              "thread(s) per rank, mean of %d steps after %d warm-up\n",
              config.hidden_size(), config.num_layers(), config.num_heads(), config.vocab_size(),
              batch, seq, absl::GetFlag(FLAGS_threads_per_rank), steps, warmup);
  std::printf("| tp | step ms (slowest rank) | tokens/s | tp all-reduces/step | tp MB/step/rank "
              "| analytic MB | tp comm ms/step (max rank) | comm share |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (int tp_size : degrees) {
    std::vector<RankResult> results(tp_size);
    const int64_t padded =
        (config.vocab_size() + 128 * tp_size - 1) / (128 * tp_size) * (128 * tp_size);
    RETURN_IF_ERROR(comm::RunLocalRanks(tp_size, [&](int rank, comm::Communicator& world) {
      const ExecContext ctx = ExecContext::Cpu(absl::GetFlag(FLAGS_threads_per_rank));
      TimedCommunicator timed(&world);
      const tp::TpGroup group = tp_size == 1 ? tp::TpGroup() : tp::TpGroup(&timed);
      ASSIGN_OR_RETURN(std::unique_ptr<transformer::GptStage> stage,
                       transformer::GptStage::Create(
                           config, transformer::StageSpec::Whole(config, padded), group,
                           Device::Cpu()));
      stage->Initialize(ctx, 1);
      absl::Time start;
      for (int s = 0; s < warmup + steps; ++s) {
        if (s == warmup) {
          RETURN_IF_ERROR(world.Barrier());
          timed.Reset();
          start = absl::Now();
        }
        RETURN_IF_ERROR(stage->Forward(ctx, 0, id_tensor, target_tensor).status());
        RETURN_IF_ERROR(stage->BackwardInput(ctx, 0, Tensor(), 1.0f / tokens).status());
        RETURN_IF_ERROR(stage->BackwardWeights(ctx, 0));
      }
      RankResult& r = results[rank];
      r.step_ms = absl::ToDoubleMilliseconds(absl::Now() - start) / steps;
      r.comm_ms = absl::ToDoubleMilliseconds(timed.busy()) / steps;
      r.bytes = timed.stats().bytes_of(comm::CommOp::kAllReduce) / steps;
      r.calls = timed.stats().calls_of(comm::CommOp::kAllReduce) / steps;
      return absl::OkStatus();
    }));
    RankResult worst;
    for (const RankResult& r : results) {
      worst.step_ms = std::max(worst.step_ms, r.step_ms);
      worst.comm_ms = std::max(worst.comm_ms, r.comm_ms);
      worst.bytes = std::max(worst.bytes, r.bytes);
      worst.calls = std::max(worst.calls, r.calls);
    }
    const double analytic_mb =
        tp_size == 1 ? 0.0 : AnalyticBytes(tokens, config.hidden_size(), config.num_layers()) / 1e6;
    std::printf("| %d | %.1f | %.0f | %lld | %.2f | %.2f | %.1f | %.1f%% |\n", tp_size,
                worst.step_ms, tokens / (worst.step_ms / 1e3), static_cast<long long>(worst.calls),
                worst.bytes / 1e6, analytic_mb, worst.comm_ms,
                100.0 * worst.comm_ms / worst.step_ms);
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace trident::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = trident::bench::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "tp_bench: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
