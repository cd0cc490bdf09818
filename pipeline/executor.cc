#include "pipeline/executor.h"

#include <time.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "core/tensor_comm.h"

namespace trident::pipeline {
namespace {

constexpr int kActivationTag = 0;
constexpr int kGradientTag = 1;

using MicroBatchChunk = std::pair<int, int>;  // (micro-batch, local chunk)

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

class StageRun {
 public:
  StageRun(const Schedule& schedule, int stage_index, PipelineStage& stage,
           comm::Communicator* pp, const ExecutorOptions& options)
      : schedule_(schedule),
        stage_index_(stage_index),
        actions_(schedule.stages[stage_index]),
        stage_(stage),
        pp_(pp),
        options_(options),
        last_model_chunk_(schedule.NumModelChunks() - 1) {}

  absl::Status Run() {
    const absl::Time epoch =
        options_.epoch == absl::InfinitePast() ? absl::Now() : options_.epoch;
    if (options_.timings != nullptr) options_.timings->assign(actions_.size(), ActionTiming{});
    if (options_.cpu_seconds != nullptr) options_.cpu_seconds->assign(actions_.size(), 0.0);
    absl::Status status;
    for (size_t i = 0; i < actions_.size() && status.ok(); ++i) {
      if (IsCompute(actions_[i].kind)) status = PostNextReceive(i + 1);
      if (!status.ok()) break;
      const absl::Time start = absl::Now();
      const double cpu_start = ThreadCpuSeconds();
      status = RunAction(i);
      if (options_.cpu_seconds != nullptr && IsCompute(actions_[i].kind)) {
        (*options_.cpu_seconds)[i] = ThreadCpuSeconds() - cpu_start;
      }
      if (options_.timings != nullptr) {
        (*options_.timings)[i] = {absl::ToDoubleSeconds(start - epoch),
                                  absl::ToDoubleSeconds(absl::Now() - epoch)};
      }
      if (!status.ok()) {
        status = absl::Status(status.code(), absl::StrCat("pipeline stage ", stage_index_,
                                                          " action #", i, " ",
                                                          actions_[i].ToString(), ": ",
                                                          status.message()));
      }
    }
    // Sends must complete before their tensors are released, error or not.
    for (auto& send : sends_) {
      absl::Status send_status = send.handle->Wait();
      if (status.ok() && !send_status.ok()) {
        status = absl::Status(send_status.code(),
                              absl::StrCat("pipeline stage ", stage_index_, " ",
                                           send.what, ": ", send_status.message()));
      }
    }
    sends_.clear();
    for (auto& [index, receive] : posted_) receive.handle->Wait().IgnoreError();
    RETURN_IF_ERROR(status);
    return CheckNothingLeft();
  }

 private:
  struct PostedReceive {
    Tensor buffer;
    std::unique_ptr<comm::CommHandle> handle;
  };
  struct PendingSend {
    Tensor tensor;
    std::unique_ptr<comm::CommHandle> handle;
    std::string what;
  };

  int ModelChunk(int chunk) const { return schedule_.ModelChunk(stage_index_, chunk); }

  static bool IsReceive(ActionKind kind) {
    return kind == ActionKind::kRecvActivation || kind == ActionKind::kRecvGradient;
  }

  // Posts the receive of the first RECV at or after `from` unless one is
  // already posted and not yet consumed.
  absl::Status PostNextReceive(size_t from) {
    if (!posted_.empty()) return absl::OkStatus();
    for (size_t j = std::max(from, next_unposted_); j < actions_.size(); ++j) {
      if (IsReceive(actions_[j].kind)) return Post(j);
    }
    return absl::OkStatus();
  }

  absl::Status Post(size_t index) {
    const Action& action = actions_[index];
    if (pp_ == nullptr) {
      return absl::FailedPreconditionError("a transfer needs the pipeline communicator");
    }
    const bool gradient = action.kind == ActionKind::kRecvGradient;
    // An activation arrives as this chunk's input; a gradient as the gradient
    // of this chunk's output.
    const std::vector<int64_t> shape = gradient ? stage_.OutputShape(action.chunk, action.micro_batch)
                                                : stage_.InputShape(action.chunk, action.micro_batch);
    PostedReceive receive;
    receive.buffer = Tensor::Empty(shape, stage_.ActivationDType());
    receive.handle = pp_->RecvAsync(AsCommBuffer(receive.buffer), action.peer_stage,
                                    gradient ? kGradientTag : kActivationTag);
    posted_.emplace(index, std::move(receive));
    next_unposted_ = index + 1;
    return absl::OkStatus();
  }

  absl::Status RunAction(size_t index) {
    const Action& action = actions_[index];
    const MicroBatchChunk key{action.micro_batch, action.chunk};
    const int k = ModelChunk(action.chunk);
    switch (action.kind) {
      case ActionKind::kForward: {
        Tensor input;
        if (k > 0) RETURN_IF_ERROR(Take(activations_in_, key, "activation", &input));
        absl::StatusOr<Tensor> output = stage_.Forward(action.chunk, action.micro_batch, input);
        RETURN_IF_ERROR(output.status());
        if (k < last_model_chunk_) {
          if (schedule_.StageOfModelChunk(k + 1) == stage_index_) {
            activations_in_[{action.micro_batch, action.chunk + 1}] = *std::move(output);
          } else {
            activations_out_[key] = *std::move(output);
          }
        }
        return absl::OkStatus();
      }
      case ActionKind::kBackwardInput: {
        Tensor grad_output;
        if (k < last_model_chunk_) {
          RETURN_IF_ERROR(Take(gradients_in_, key, "output gradient", &grad_output));
        }
        absl::StatusOr<Tensor> grad_input =
            stage_.BackwardInput(action.chunk, action.micro_batch, grad_output);
        RETURN_IF_ERROR(grad_input.status());
        if (k > 0) {
          if (schedule_.StageOfModelChunk(k - 1) == stage_index_) {
            gradients_in_[{action.micro_batch, action.chunk - 1}] = *std::move(grad_input);
          } else {
            gradients_out_[key] = *std::move(grad_input);
          }
        }
        return absl::OkStatus();
      }
      case ActionKind::kBackwardWeight:
        return stage_.BackwardWeight(action.chunk, action.micro_batch);
      case ActionKind::kSendActivation:
      case ActionKind::kSendGradient: {
        const bool gradient = action.kind == ActionKind::kSendGradient;
        if (pp_ == nullptr) {
          return absl::FailedPreconditionError("a transfer needs the pipeline communicator");
        }
        Tensor tensor;
        RETURN_IF_ERROR(Take(gradient ? gradients_out_ : activations_out_, key,
                                   gradient ? "input gradient to send" : "output to send",
                                   &tensor));
        if (!tensor.is_contiguous()) {
          return absl::InternalError(absl::StrCat("the stage returned a non-contiguous tensor ",
                                                  tensor.DebugString()));
        }
        PendingSend send;
        send.handle = pp_->SendAsync(AsConstCommBuffer(tensor), action.peer_stage,
                                     gradient ? kGradientTag : kActivationTag);
        send.tensor = std::move(tensor);
        send.what = action.ToString();
        sends_.push_back(std::move(send));
        return absl::OkStatus();
      }
      case ActionKind::kRecvActivation:
      case ActionKind::kRecvGradient: {
        if (!posted_.contains(index)) RETURN_IF_ERROR(Post(index));
        auto node = posted_.extract(index);
        RETURN_IF_ERROR(node.mapped().handle->Wait());
        auto& inbox = action.kind == ActionKind::kRecvGradient ? gradients_in_ : activations_in_;
        inbox[key] = std::move(node.mapped().buffer);
        return absl::OkStatus();
      }
    }
    return absl::InternalError("unknown action kind");
  }

  static absl::Status Take(absl::flat_hash_map<MicroBatchChunk, Tensor>& box,
                           const MicroBatchChunk& key, absl::string_view what, Tensor* out) {
    auto it = box.find(key);
    if (it == box.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no ", what, " for micro-batch ", key.first, ", chunk ", key.second,
          " (the schedule does not deliver it before this action)"));
    }
    *out = std::move(it->second);
    box.erase(it);
    return absl::OkStatus();
  }

  absl::Status CheckNothingLeft() const {
    std::vector<std::string> left;
    const auto list = [&left](const absl::flat_hash_map<MicroBatchChunk, Tensor>& box,
                              absl::string_view what) {
      for (const auto& [key, tensor] : box) {
        left.push_back(absl::StrCat(what, " of micro-batch ", key.first, ", chunk ", key.second));
      }
    };
    list(activations_in_, "unused activation");
    list(gradients_in_, "unused gradient");
    list(activations_out_, "unsent activation");
    list(gradients_out_, "unsent gradient");
    if (left.empty()) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat("pipeline stage ", stage_index_,
                                                      " ends the step with ",
                                                      absl::StrJoin(left, "; ")));
  }

  const Schedule& schedule_;
  const int stage_index_;
  const std::vector<Action>& actions_;
  PipelineStage& stage_;
  comm::Communicator* pp_;
  const ExecutorOptions& options_;
  const int last_model_chunk_;

  // Inputs of F (activations) and of B (output gradients), by (mb, chunk).
  absl::flat_hash_map<MicroBatchChunk, Tensor> activations_in_;
  absl::flat_hash_map<MicroBatchChunk, Tensor> gradients_in_;
  // Results waiting for their SEND.
  absl::flat_hash_map<MicroBatchChunk, Tensor> activations_out_;
  absl::flat_hash_map<MicroBatchChunk, Tensor> gradients_out_;
  absl::flat_hash_map<size_t, PostedReceive> posted_;  // By action index.
  size_t next_unposted_ = 0;
  std::deque<PendingSend> sends_;
};

}  // namespace

absl::Status RunStageSchedule(const Schedule& schedule, int stage_index, PipelineStage& stage,
                              comm::Communicator* pp, const ExecutorOptions& options) {
  if (stage_index < 0 || stage_index >= schedule.num_stages ||
      static_cast<int>(schedule.stages.size()) != schedule.num_stages) {
    return absl::InvalidArgumentError(absl::StrCat("pipeline stage ", stage_index,
                                                   " is not a stage of a schedule with ",
                                                   schedule.num_stages, " stages"));
  }
  if (schedule.num_stages > 1) {
    if (pp == nullptr || pp->size() != schedule.num_stages || pp->rank() != stage_index) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the pipeline communicator must have one rank per stage (", schedule.num_stages,
          ") with this stage's rank ", stage_index, "; got ",
          pp == nullptr ? "none" : DescribeGroup(*pp),
          pp == nullptr ? "" : absl::StrCat(" with this rank at ", pp->rank())));
    }
  }
  StageRun run(schedule, stage_index, stage, pp, options);
  return run.Run();
}

}  // namespace trident::pipeline
