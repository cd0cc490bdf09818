#include "pipeline/simulator.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace trident::pipeline {
namespace {

enum Pass { kForwardPass = 0, kBackwardInputPass = 1, kBackwardWeightPass = 2 };

// A message in flight between two stages.
struct Message {
  int micro_batch;
  int model_chunk;  // the chunk whose F (activation) or B (gradient) produced it
  double arrival;
};

class Simulation {
 public:
  // durations[s][i]: how long compute action i of stage s takes.
  Simulation(const Schedule& schedule, std::vector<std::vector<double>> durations,
             double comm_latency)
      : schedule_(schedule),
        durations_(std::move(durations)),
        comm_latency_(comm_latency),
        p_(schedule.num_stages),
        m_(schedule.num_micro_batches),
        num_model_chunks_(schedule.NumModelChunks()),
        done_(3 * static_cast<size_t>(m_) * num_model_chunks_, 0),
        received_activation_(static_cast<size_t>(m_) * num_model_chunks_, 0),
        received_gradient_(static_cast<size_t>(m_) * num_model_chunks_, 0),
        free_at_(p_, 0.0),
        in_flight_(p_, 0),
        awaiting_backward_(p_, 0) {
    result_.peak_in_flight.assign(p_, 0);
    result_.peak_awaiting_backward.assign(p_, 0);
    result_.busy.assign(p_, 0.0);
    result_.timings.resize(p_);
    for (int s = 0; s < p_; ++s) {
      result_.timings[s].resize(schedule_.stages[s].size());
    }
  }

  absl::StatusOr<SimulationResult> Run() {
    std::vector<size_t> next(p_, 0);
    bool progress = true;
    while (progress) {
      progress = false;
      for (int s = 0; s < p_; ++s) {
        const std::vector<Action>& actions = schedule_.stages[s];
        while (next[s] < actions.size()) {
          std::string wait_reason;
          absl::StatusOr<bool> ran = TryRun(s, static_cast<int>(next[s]), &wait_reason);
          if (!ran.ok()) return ran.status();
          if (!*ran) break;
          ++next[s];
          progress = true;
        }
      }
    }
    std::vector<std::string> stuck;
    for (int s = 0; s < p_; ++s) {
      if (next[s] == schedule_.stages[s].size()) continue;
      std::string wait_reason;
      absl::StatusOr<bool> ran = TryRun(s, static_cast<int>(next[s]), &wait_reason);
      if (!ran.ok()) return ran.status();
      stuck.push_back(absl::StrCat(Where(s, static_cast<int>(next[s])), " waits for ",
                                   wait_reason));
    }
    if (!stuck.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("schedule deadlocks: ", absl::StrJoin(stuck, "; ")));
    }
    if (absl::Status status = CheckComplete(); !status.ok()) return status;

    for (int s = 0; s < p_; ++s) result_.makespan = std::max(result_.makespan, free_at_[s]);
    result_.bubble_fraction.assign(p_, 0.0);
    if (result_.makespan > 0) {
      for (int s = 0; s < p_; ++s) {
        result_.bubble_fraction[s] = (result_.makespan - result_.busy[s]) / result_.makespan;
      }
    }
    return std::move(result_);
  }

 private:
  size_t PassIndex(Pass pass, int micro_batch, int model_chunk) const {
    return (static_cast<size_t>(pass) * m_ + micro_batch) * num_model_chunks_ + model_chunk;
  }
  size_t DataIndex(int micro_batch, int model_chunk) const {
    return static_cast<size_t>(micro_batch) * num_model_chunks_ + model_chunk;
  }
  bool Done(Pass pass, int micro_batch, int model_chunk) const {
    return done_[PassIndex(pass, micro_batch, model_chunk)] != 0;
  }
  // "F(mb=2, chunk=0)" for model chunk k.
  std::string ComputeName(ActionKind kind, int micro_batch, int model_chunk) const {
    return absl::StrFormat("%s(mb=%d, chunk=%d) of stage %d", ActionKindName(kind), micro_batch,
                           schedule_.ChunkOfModelChunk(model_chunk),
                           schedule_.StageOfModelChunk(model_chunk));
  }
  std::string Where(int stage, int index) const {
    return absl::StrFormat("stage %d action #%d %s", stage, index,
                           schedule_.stages[stage][index].ToString());
  }
  absl::Status Error(int stage, int index, absl::string_view rule) const {
    return absl::FailedPreconditionError(absl::StrCat(Where(stage, index), ": ", rule));
  }

  // Runs action `index` of `stage` if it can run now: true when it ran, false
  // (with `wait_reason`) when it must wait, an error when it can never be valid.
  absl::StatusOr<bool> TryRun(int stage, int index, std::string* wait_reason) {
    const Action& action = schedule_.stages[stage][index];
    if (action.micro_batch < 0 || action.micro_batch >= m_) {
      return Error(stage, index,
                   absl::StrCat("micro_batch must be in [0, ", m_, ")"));
    }
    if (action.chunk < 0 || action.chunk >= schedule_.num_chunks) {
      return Error(stage, index, absl::StrCat("chunk must be in [0, ", schedule_.num_chunks, ")"));
    }
    const int mb = action.micro_batch;
    const int k = schedule_.ModelChunk(stage, action.chunk);
    const int last = num_model_chunks_ - 1;
    const int prev_stage = k > 0 ? schedule_.StageOfModelChunk(k - 1) : -1;
    const int next_stage = k < last ? schedule_.StageOfModelChunk(k + 1) : -1;
    ActionTiming& timing = result_.timings[stage][index];

    switch (action.kind) {
      case ActionKind::kForward: {
        if (Done(kForwardPass, mb, k)) return Error(stage, index, "runs a second time");
        if (k > 0) {
          if (prev_stage == stage && !Done(kForwardPass, mb, k - 1)) {
            *wait_reason = absl::StrCat(ComputeName(ActionKind::kForward, mb, k - 1),
                                        ", which has not run");
            return false;
          }
          if (prev_stage != stage && !received_activation_[DataIndex(mb, k)]) {
            *wait_reason = absl::StrCat("the activation of ",
                                        ComputeName(ActionKind::kForward, mb, k - 1),
                                        ", never received (no RECV_ACT before it)");
            return false;
          }
        }
        RunCompute(stage, kForwardPass, mb, k, durations_[stage][index], timing);
        ++in_flight_[stage];
        ++awaiting_backward_[stage];
        result_.peak_in_flight[stage] = std::max(result_.peak_in_flight[stage], in_flight_[stage]);
        result_.peak_awaiting_backward[stage] =
            std::max(result_.peak_awaiting_backward[stage], awaiting_backward_[stage]);
        return true;
      }
      case ActionKind::kBackwardInput: {
        if (schedule_.forward_only) return Error(stage, index, "a forward-only schedule has no B");
        if (Done(kBackwardInputPass, mb, k)) return Error(stage, index, "runs a second time");
        if (!Done(kForwardPass, mb, k)) {
          *wait_reason = absl::StrCat(ComputeName(ActionKind::kForward, mb, k),
                                      ", which has not run");
          return false;
        }
        if (k < last) {
          if (next_stage == stage && !Done(kBackwardInputPass, mb, k + 1)) {
            *wait_reason = absl::StrCat(ComputeName(ActionKind::kBackwardInput, mb, k + 1),
                                        ", which has not run");
            return false;
          }
          if (next_stage != stage && !received_gradient_[DataIndex(mb, k)]) {
            *wait_reason = absl::StrCat("the gradient of ",
                                        ComputeName(ActionKind::kBackwardInput, mb, k + 1),
                                        ", never received (no RECV_GRAD before it)");
            return false;
          }
        }
        RunCompute(stage, kBackwardInputPass, mb, k, durations_[stage][index], timing);
        --awaiting_backward_[stage];
        return true;
      }
      case ActionKind::kBackwardWeight: {
        if (schedule_.forward_only) return Error(stage, index, "a forward-only schedule has no W");
        if (Done(kBackwardWeightPass, mb, k)) return Error(stage, index, "runs a second time");
        if (!Done(kBackwardInputPass, mb, k)) {
          *wait_reason = absl::StrCat(ComputeName(ActionKind::kBackwardInput, mb, k),
                                      ", which has not run");
          return false;
        }
        RunCompute(stage, kBackwardWeightPass, mb, k, durations_[stage][index], timing);
        --in_flight_[stage];
        return true;
      }
      case ActionKind::kSendActivation:
      case ActionKind::kSendGradient: {
        const bool gradient = action.kind == ActionKind::kSendGradient;
        const int target = gradient ? prev_stage : next_stage;
        if (target < 0) {
          return Error(stage, index,
                       gradient ? "the first model chunk has no previous chunk to send to"
                                : "the last model chunk has no next chunk to send to");
        }
        if (action.peer_stage != target || target == stage) {
          return Error(stage, index,
                       absl::StrCat("peer must be stage ", target,
                                    " (the stage holding the adjacent model chunk), and differ "
                                    "from the sending stage"));
        }
        const Pass producer = gradient ? kBackwardInputPass : kForwardPass;
        if (!Done(producer, mb, k)) {
          return Error(stage, index,
                       absl::StrCat("sends data before ",
                                    ComputeName(gradient ? ActionKind::kBackwardInput
                                                         : ActionKind::kForward,
                                                mb, k),
                                    " produced it"));
        }
        timing.start = timing.end = free_at_[stage];
        channels_[{stage, target, gradient}].push_back(
            {mb, k, free_at_[stage] + comm_latency_});
        return true;
      }
      case ActionKind::kRecvActivation:
      case ActionKind::kRecvGradient: {
        const bool gradient = action.kind == ActionKind::kRecvGradient;
        const int source = gradient ? next_stage : prev_stage;
        const int source_chunk = gradient ? k + 1 : k - 1;
        if (source < 0) {
          return Error(stage, index,
                       gradient ? "the last model chunk receives no gradient"
                                : "the first model chunk receives no activation");
        }
        if (action.peer_stage != source || source == stage) {
          return Error(stage, index,
                       absl::StrCat("peer must be stage ", source,
                                    " (the stage holding the adjacent model chunk), and differ "
                                    "from the receiving stage"));
        }
        std::deque<Message>& channel = channels_[{source, stage, gradient}];
        if (channel.empty()) {
          *wait_reason =
              absl::StrCat(gradient ? "SEND_GRAD" : "SEND_ACT", " of micro-batch ", mb,
                           " from stage ", source, ", not yet sent");
          return false;
        }
        const Message& message = channel.front();
        if (message.micro_batch != mb || message.model_chunk != source_chunk) {
          return Error(stage, index,
                       absl::StrFormat("the next %s from stage %d is mb=%d, chunk=%d; transfers "
                                       "between two stages must match in order",
                                       gradient ? "gradient" : "activation", source,
                                       message.micro_batch,
                                       schedule_.ChunkOfModelChunk(message.model_chunk)));
        }
        std::vector<char>& received = gradient ? received_gradient_ : received_activation_;
        if (received[DataIndex(mb, k)]) return Error(stage, index, "receives a second time");
        received[DataIndex(mb, k)] = 1;
        timing.start = free_at_[stage];
        timing.end = std::max(free_at_[stage], message.arrival);
        free_at_[stage] = timing.end;
        channel.pop_front();
        return true;
      }
    }
    return Error(stage, index, "unknown action kind");
  }

  void RunCompute(int stage, Pass pass, int micro_batch, int model_chunk, double duration,
                  ActionTiming& timing) {
    done_[PassIndex(pass, micro_batch, model_chunk)] = 1;
    timing.start = free_at_[stage];
    timing.end = timing.start + duration;
    free_at_[stage] = timing.end;
    result_.busy[stage] += duration;
  }

  absl::Status CheckComplete() const {
    static constexpr ActionKind kKinds[3] = {ActionKind::kForward, ActionKind::kBackwardInput,
                                             ActionKind::kBackwardWeight};
    std::vector<std::string> missing;
    for (int k = 0; k < num_model_chunks_; ++k) {
      for (int mb = 0; mb < m_; ++mb) {
        for (int pass = 0; pass < (schedule_.forward_only ? 1 : 3); ++pass) {
          if (Done(static_cast<Pass>(pass), mb, k)) continue;
          missing.push_back(absl::StrFormat(
              "stage %d never runs %s(mb=%d, chunk=%d)", schedule_.StageOfModelChunk(k),
              ActionKindName(kKinds[pass]), mb, schedule_.ChunkOfModelChunk(k)));
        }
      }
    }
    if (!missing.empty()) {
      const size_t shown = std::min<size_t>(missing.size(), 4);
      return absl::FailedPreconditionError(absl::StrCat(
          "schedule is incomplete (", missing.size(), " passes missing): ",
          absl::StrJoin(missing.begin(), missing.begin() + shown, "; "),
          missing.size() > shown ? "; ..." : ""));
    }
    for (const auto& [key, channel] : channels_) {
      if (channel.empty()) continue;
      const auto& [from, to, gradient] = key;
      const Message& message = channel.front();
      return absl::FailedPreconditionError(absl::StrFormat(
          "stage %d sends %s(mb=%d, chunk=%d, peer=%d) but stage %d never receives it", from,
          gradient ? "SEND_GRAD" : "SEND_ACT", message.micro_batch,
          schedule_.ChunkOfModelChunk(message.model_chunk), to, to));
    }
    return absl::OkStatus();
  }

  const Schedule& schedule_;
  const std::vector<std::vector<double>> durations_;
  const double comm_latency_;
  const int p_;
  const int m_;
  const int num_model_chunks_;
  std::vector<char> done_;                 // [pass][micro-batch][model chunk]
  std::vector<char> received_activation_;  // [micro-batch][consuming model chunk]
  std::vector<char> received_gradient_;    // [micro-batch][consuming model chunk]
  std::map<std::tuple<int, int, bool>, std::deque<Message>> channels_;  // (from, to, gradient)
  std::vector<double> free_at_;
  std::vector<int> in_flight_;
  std::vector<int> awaiting_backward_;
  SimulationResult result_;
};

absl::Status ValidateShape(const Schedule& schedule) {
  if (schedule.num_stages < 1 || schedule.num_micro_batches < 1 || schedule.num_chunks < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "schedule has num_stages = %d, num_micro_batches = %d, num_chunks = %d: each must be at "
        "least 1",
        schedule.num_stages, schedule.num_micro_batches, schedule.num_chunks));
  }
  if (static_cast<int>(schedule.stages.size()) != schedule.num_stages) {
    return absl::InvalidArgumentError(
        absl::StrFormat("schedule has %d action lists for num_stages = %d: must be equal",
                        schedule.stages.size(), schedule.num_stages));
  }
  return absl::OkStatus();
}

absl::Status CheckDuration(double d) {
  if (d >= 0.0 && std::isfinite(d)) return absl::OkStatus();  // Also rejects NaN.
  return absl::InvalidArgumentError(
      absl::StrCat("action durations must be finite non-negative numbers, got ", d));
}

}  // namespace

absl::StatusOr<SimulationResult> SimulateSchedule(const Schedule& schedule,
                                                  const ActionDurations& durations) {
  if (absl::Status status = ValidateShape(schedule); !status.ok()) return status;
  for (double d : {durations.forward, durations.backward_input, durations.backward_weight,
                   durations.comm_latency}) {
    if (absl::Status status = CheckDuration(d); !status.ok()) return status;
  }
  std::vector<std::vector<double>> per_action(schedule.stages.size());
  for (size_t s = 0; s < schedule.stages.size(); ++s) {
    for (const Action& action : schedule.stages[s]) {
      double d = 0;
      if (action.kind == ActionKind::kForward) d = durations.forward;
      if (action.kind == ActionKind::kBackwardInput) d = durations.backward_input;
      if (action.kind == ActionKind::kBackwardWeight) d = durations.backward_weight;
      per_action[s].push_back(d);
    }
  }
  Simulation simulation(schedule, std::move(per_action), durations.comm_latency);
  return simulation.Run();
}

absl::StatusOr<SimulationResult> ReplaySchedule(
    const Schedule& schedule, const std::vector<std::vector<double>>& action_durations,
    double comm_latency) {
  if (absl::Status status = ValidateShape(schedule); !status.ok()) return status;
  if (action_durations.size() != schedule.stages.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "replay has durations for %d stages, the schedule has %d", action_durations.size(),
        schedule.stages.size()));
  }
  for (size_t s = 0; s < schedule.stages.size(); ++s) {
    if (action_durations[s].size() != schedule.stages[s].size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "replay has %d durations for stage %d, which has %d actions", action_durations[s].size(),
          s, schedule.stages[s].size()));
    }
    for (double d : action_durations[s]) {
      if (absl::Status status = CheckDuration(d); !status.ok()) return status;
    }
  }
  if (absl::Status status = CheckDuration(comm_latency); !status.ok()) return status;
  Simulation simulation(schedule, action_durations, comm_latency);
  return simulation.Run();
}

absl::StatusOr<SimulationResult> CheckSchedule(const Schedule& schedule) {
  return SimulateSchedule(schedule, ActionDurations::Unit());
}

}  // namespace trident::pipeline
