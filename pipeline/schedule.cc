#include "pipeline/schedule.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/schedule_names.h"

namespace trident::pipeline {
namespace {

// A compute step before transfers are inserted.
struct Compute {
  ActionKind kind;
  int micro_batch;
  int chunk;
};

absl::Status ValidateCommon(int num_stages, int num_micro_batches, int num_chunks) {
  if (num_stages < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_stages (pp) = ", num_stages, ": must be at least 1"));
  }
  if (num_micro_batches < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_micro_batches = ", num_micro_batches, ": must be at least 1"));
  }
  if (num_chunks < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_chunks (virtual stages) = ", num_chunks, ": must be at least 1"));
  }
  return absl::OkStatus();
}

// Turns per-stage compute orders into action lists: a receive right before the
// F/B that consumes remote data, a send right after the F/B that produced data
// a remote stage needs.
Schedule Assemble(ScheduleKind kind, int num_stages, int num_micro_batches, int num_chunks,
                  const std::vector<std::vector<Compute>>& computes) {
  Schedule schedule;
  schedule.kind = kind;
  schedule.num_stages = num_stages;
  schedule.num_micro_batches = num_micro_batches;
  schedule.num_chunks = num_chunks;
  schedule.stages.resize(num_stages);
  const int last_model_chunk = schedule.NumModelChunks() - 1;
  for (int s = 0; s < num_stages; ++s) {
    std::vector<Action>& actions = schedule.stages[s];
    for (const Compute& c : computes[s]) {
      const int k = schedule.ModelChunk(s, c.chunk);
      const int prev_stage = k > 0 ? schedule.StageOfModelChunk(k - 1) : -1;
      const int next_stage = k < last_model_chunk ? schedule.StageOfModelChunk(k + 1) : -1;
      const bool prev_remote = prev_stage >= 0 && prev_stage != s;
      const bool next_remote = next_stage >= 0 && next_stage != s;
      switch (c.kind) {
        case ActionKind::kForward:
          if (prev_remote) {
            actions.push_back({ActionKind::kRecvActivation, c.micro_batch, c.chunk, prev_stage});
          }
          actions.push_back({ActionKind::kForward, c.micro_batch, c.chunk, -1});
          if (next_remote) {
            actions.push_back({ActionKind::kSendActivation, c.micro_batch, c.chunk, next_stage});
          }
          break;
        case ActionKind::kBackwardInput:
          if (next_remote) {
            actions.push_back({ActionKind::kRecvGradient, c.micro_batch, c.chunk, next_stage});
          }
          actions.push_back({ActionKind::kBackwardInput, c.micro_batch, c.chunk, -1});
          if (prev_remote) {
            actions.push_back({ActionKind::kSendGradient, c.micro_batch, c.chunk, prev_stage});
          }
          break;
        default:
          actions.push_back({c.kind, c.micro_batch, c.chunk, -1});
          break;
      }
    }
  }
  return schedule;
}

void AddBackward(std::vector<Compute>& order, int micro_batch, int chunk) {
  order.push_back({ActionKind::kBackwardInput, micro_batch, chunk});
  order.push_back({ActionKind::kBackwardWeight, micro_batch, chunk});
}

}  // namespace

absl::string_view ActionKindName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kForward:
      return "F";
    case ActionKind::kBackwardInput:
      return "B";
    case ActionKind::kBackwardWeight:
      return "W";
    case ActionKind::kSendActivation:
      return "SEND_ACT";
    case ActionKind::kRecvActivation:
      return "RECV_ACT";
    case ActionKind::kSendGradient:
      return "SEND_GRAD";
    case ActionKind::kRecvGradient:
      return "RECV_GRAD";
  }
  return "?";
}

bool IsCompute(ActionKind kind) {
  return kind == ActionKind::kForward || kind == ActionKind::kBackwardInput ||
         kind == ActionKind::kBackwardWeight;
}

std::string Action::ToString() const {
  if (IsCompute(kind)) {
    return absl::StrFormat("%s(mb=%d, chunk=%d)", ActionKindName(kind), micro_batch, chunk);
  }
  return absl::StrFormat("%s(mb=%d, chunk=%d, peer=%d)", ActionKindName(kind), micro_batch, chunk,
                         peer_stage);
}

// The names are core's (core/schedule_names.h), indexed by ScheduleKind.
static_assert(static_cast<int>(ScheduleKind::kGPipe) == 0 &&
              static_cast<int>(ScheduleKind::kOneFOneB) == 1 &&
              static_cast<int>(ScheduleKind::kInterleaved1F1B) == 2 &&
              static_cast<int>(ScheduleKind::kZeroBubbleH1) == 3 &&
              kPipelineScheduleNames.size() == 4);

absl::string_view ScheduleKindName(ScheduleKind kind) {
  const size_t index = static_cast<size_t>(kind);
  return index < kPipelineScheduleNames.size() ? kPipelineScheduleNames[index] : "?";
}

absl::StatusOr<ScheduleKind> ParseScheduleKind(absl::string_view name) {
  absl::StatusOr<int> index = ParsePipelineScheduleName(name);
  if (!index.ok()) return index.status();
  return static_cast<ScheduleKind>(*index);
}

absl::StatusOr<Schedule> MakeGPipeSchedule(int num_stages, int num_micro_batches) {
  if (absl::Status s = ValidateCommon(num_stages, num_micro_batches, 1); !s.ok()) return s;
  std::vector<std::vector<Compute>> computes(num_stages);
  for (int s = 0; s < num_stages; ++s) {
    for (int mb = 0; mb < num_micro_batches; ++mb) {
      computes[s].push_back({ActionKind::kForward, mb, 0});
    }
    for (int mb = 0; mb < num_micro_batches; ++mb) AddBackward(computes[s], mb, 0);
  }
  return Assemble(ScheduleKind::kGPipe, num_stages, num_micro_batches, 1, computes);
}

absl::StatusOr<Schedule> MakeOneFOneBSchedule(int num_stages, int num_micro_batches) {
  if (absl::Status s = ValidateCommon(num_stages, num_micro_batches, 1); !s.ok()) return s;
  const int p = num_stages, m = num_micro_batches;
  std::vector<std::vector<Compute>> computes(p);
  for (int s = 0; s < p; ++s) {
    std::vector<Compute>& order = computes[s];
    const int warmup = std::min(p - s - 1, m);
    for (int mb = 0; mb < warmup; ++mb) order.push_back({ActionKind::kForward, mb, 0});
    for (int i = 0; i < m - warmup; ++i) {
      order.push_back({ActionKind::kForward, warmup + i, 0});
      AddBackward(order, i, 0);
    }
    for (int mb = m - warmup; mb < m; ++mb) AddBackward(order, mb, 0);
  }
  return Assemble(ScheduleKind::kOneFOneB, p, m, 1, computes);
}

absl::StatusOr<Schedule> MakeInterleavedSchedule(int num_stages, int num_micro_batches,
                                                 int num_chunks) {
  if (absl::Status s = ValidateCommon(num_stages, num_micro_batches, num_chunks); !s.ok()) {
    return s;
  }
  const int p = num_stages, m = num_micro_batches, v = num_chunks;
  if (m % p != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_micro_batches = ", m, ": the interleaved schedule needs a multiple of num_stages (",
        p, ")"));
  }
  // The i-th forward (backward) step of a stage, 0 <= i < m * v: micro-batches
  // go in groups of p; within a round of p * v steps the group visits chunk 0,
  // 1, ..., v - 1 for forwards and v - 1, ..., 0 for backwards.
  auto micro_batch_of_step = [&](int i) { return (i / (p * v)) * p + i % p; };
  auto forward_chunk_of_step = [&](int i) { return (i / p) % v; };
  auto backward_chunk_of_step = [&](int i) { return v - 1 - (i / p) % v; };
  const int total = m * v;
  std::vector<std::vector<Compute>> computes(p);
  for (int s = 0; s < p; ++s) {
    std::vector<Compute>& order = computes[s];
    const int warmup = std::min((v - 1) * p + 2 * (p - s - 1), total);
    for (int i = 0; i < warmup; ++i) {
      order.push_back({ActionKind::kForward, micro_batch_of_step(i), forward_chunk_of_step(i)});
    }
    for (int i = 0; i < total - warmup; ++i) {
      const int f = warmup + i;
      order.push_back({ActionKind::kForward, micro_batch_of_step(f), forward_chunk_of_step(f)});
      AddBackward(order, micro_batch_of_step(i), backward_chunk_of_step(i));
    }
    for (int i = total - warmup; i < total; ++i) {
      AddBackward(order, micro_batch_of_step(i), backward_chunk_of_step(i));
    }
  }
  return Assemble(ScheduleKind::kInterleaved1F1B, p, m, v, computes);
}

absl::StatusOr<Schedule> MakeZeroBubbleH1Schedule(int num_stages, int num_micro_batches) {
  if (absl::Status s = ValidateCommon(num_stages, num_micro_batches, 1); !s.ok()) return s;
  const int p = num_stages, m = num_micro_batches;
  std::vector<std::vector<Compute>> computes(p);
  for (int s = 0; s < p; ++s) {
    std::vector<Compute>& order = computes[s];
    int backwards_done = 0;
    int weights_done = 0;
    // After each B, run the oldest pending W once more than `s` are pending:
    // W lags B by s steps on stage s, so B (the critical path to the previous
    // stage) is never held up by a W until the pipeline drains.
    auto backward = [&]() {
      order.push_back({ActionKind::kBackwardInput, backwards_done++, 0});
      if (backwards_done - weights_done > s) {
        order.push_back({ActionKind::kBackwardWeight, weights_done++, 0});
      }
    };
    const int warmup = std::min(p - s - 1, m);
    for (int mb = 0; mb < warmup; ++mb) order.push_back({ActionKind::kForward, mb, 0});
    for (int i = 0; i < m - warmup; ++i) {
      order.push_back({ActionKind::kForward, warmup + i, 0});
      backward();
    }
    while (backwards_done < m) backward();
    while (weights_done < m) order.push_back({ActionKind::kBackwardWeight, weights_done++, 0});
  }
  return Assemble(ScheduleKind::kZeroBubbleH1, p, m, 1, computes);
}

absl::StatusOr<Schedule> MakeForwardOnlySchedule(int num_stages, int num_micro_batches,
                                                 int num_chunks) {
  if (absl::Status status = ValidateCommon(num_stages, num_micro_batches, num_chunks);
      !status.ok()) {
    return status;
  }
  std::vector<std::vector<Compute>> computes(num_stages);
  for (int mb = 0; mb < num_micro_batches; ++mb) {
    for (int chunk = 0; chunk < num_chunks; ++chunk) {
      for (int s = 0; s < num_stages; ++s) {
        computes[s].push_back({ActionKind::kForward, mb, chunk});
      }
    }
  }
  Schedule schedule = Assemble(ScheduleKind::kOneFOneB, num_stages, num_micro_batches,
                               num_chunks, computes);
  schedule.forward_only = true;
  return schedule;
}

absl::StatusOr<Schedule> MakeSchedule(ScheduleKind kind, int num_stages, int num_micro_batches,
                                      int num_chunks) {
  if (kind != ScheduleKind::kInterleaved1F1B && num_chunks != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_chunks (virtual stages) = ", num_chunks, ": only the interleaved schedule supports "
        "more than 1, not ", ScheduleKindName(kind)));
  }
  switch (kind) {
    case ScheduleKind::kGPipe:
      return MakeGPipeSchedule(num_stages, num_micro_batches);
    case ScheduleKind::kOneFOneB:
      return MakeOneFOneBSchedule(num_stages, num_micro_batches);
    case ScheduleKind::kInterleaved1F1B:
      return MakeInterleavedSchedule(num_stages, num_micro_batches, num_chunks);
    case ScheduleKind::kZeroBubbleH1:
      return MakeZeroBubbleH1Schedule(num_stages, num_micro_batches);
  }
  return absl::InvalidArgumentError("unknown schedule kind");
}

}  // namespace trident::pipeline
