#include "pipeline/executor.h"

#include <time.h>

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
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
  StageRun(const Schedule& schedule, int stage_index, PipelineStage& stage, comm::Communicator* pp,
           const ExecutorOptions& options)
      : schedule_(schedule),
        stage_index_(stage_index),
        actions_(schedule.stages[stage_index]),
        stage_(stage),
        pp_(pp),
        options_(options),
        last_model_chunk_(schedule.NumModelChunks() - 1),
        batch_sends_with_receive_(schedule.num_chunks == 1) {}

  absl::Status Run() {
    const absl::Time epoch =
        options_.epoch == absl::InfinitePast() ? absl::Now() : options_.epoch;
    if (options_.timings != nullptr) options_.timings->assign(actions_.size(), ActionTiming{});
    if (options_.cpu_seconds != nullptr) options_.cpu_seconds->assign(actions_.size(), 0.0);
    absl::Status status;
    for (size_t i = 0; i < actions_.size() && status.ok(); ++i) {
      // A compute action followed by a SEND leaves the receive to that SEND's
      // batch (see BatchSends).
      if (IsCompute(actions_[i].kind) && !(batch_sends_with_receive_ && IsSend(i + 1))) {
        status = PostNextReceive(i + 1);
      }
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
    // (A batch's handle is shared by its sends and receive; waiting it again
    // returns its status.)
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
  // Handles are shared: the ops of one batch (sends and a receive) have one.
  struct PostedReceive {
    Tensor buffer;
    std::shared_ptr<comm::CommHandle> handle;
  };
  struct PendingSend {
    Tensor tensor;
    std::shared_ptr<comm::CommHandle> handle;
    std::string what;
  };

  int ModelChunk(int chunk) const { return schedule_.ModelChunk(stage_index_, chunk); }

  static bool IsReceive(ActionKind kind) {
    return kind == ActionKind::kRecvActivation || kind == ActionKind::kRecvGradient;
  }
  bool IsSend(size_t index) const {
    return index < actions_.size() && (actions_[index].kind == ActionKind::kSendActivation ||
                                       actions_[index].kind == ActionKind::kSendGradient);
  }
  static int TagOf(ActionKind kind) {
    return kind == ActionKind::kSendGradient || kind == ActionKind::kRecvGradient ? kGradientTag
                                                                                  : kActivationTag;
  }

  // The index of the first RECV at or after `from` whose receive is to be
  // posted next: none while a posted one is not yet consumed.
  std::optional<size_t> NextReceiveToPost(size_t from) const {
    if (!posted_.empty()) return std::nullopt;
    for (size_t j = std::max(from, next_unposted_); j < actions_.size(); ++j) {
      if (IsReceive(actions_[j].kind)) return j;
    }
    return std::nullopt;
  }

  // Posts the receive of the first RECV at or after `from` unless one is
  // already posted and not yet consumed.
  absl::Status PostNextReceive(size_t from) {
    const std::optional<size_t> next = NextReceiveToPost(from);
    if (!next.has_value()) return absl::OkStatus();
    return Post(*next);
  }

  absl::Status Post(size_t index) {
    if (pp_ == nullptr) {
      return absl::FailedPreconditionError("a transfer needs the pipeline communicator");
    }
    PostedReceive receive = ReceiveBuffer(index);
    receive.handle = pp_->RecvAsync(AsCommBuffer(receive.buffer), actions_[index].peer_stage,
                                    TagOf(actions_[index].kind));
    posted_.emplace(index, std::move(receive));
    next_unposted_ = index + 1;
    return absl::OkStatus();
  }

  // The buffer RECV `index` lands in: an activation arrives as its chunk's
  // input, a gradient as the gradient of its chunk's output.
  PostedReceive ReceiveBuffer(size_t index) const {
    const Action& action = actions_[index];
    const std::vector<int64_t> shape = action.kind == ActionKind::kRecvGradient
                                           ? stage_.OutputShape(action.chunk, action.micro_batch)
                                           : stage_.InputShape(action.chunk, action.micro_batch);
    PostedReceive receive;
    receive.buffer = Tensor::Empty(shape, stage_.ActivationDType());
    return receive;
  }

  // The tensor SEND `index` sends, taken from the results of the F/B before it.
  absl::StatusOr<Tensor> TakeSendTensor(size_t index) {
    const Action& action = actions_[index];
    const bool gradient = action.kind == ActionKind::kSendGradient;
    Tensor tensor;
    RETURN_IF_ERROR(Take(gradient ? gradients_out_ : activations_out_,
                         {action.micro_batch, action.chunk},
                         gradient ? "input gradient to send" : "output to send", &tensor));
    if (!tensor.is_contiguous()) {
      return absl::InternalError(
          absl::StrCat("the stage returned a non-contiguous tensor ", tensor.DebugString()));
    }
    return tensor;
  }

  // Starts SEND `index`, the SENDs right after it, and (for lists that allow
  // it, see batch_sends_with_receive_) the receive to post next, as one batch
  // (as Megatron's send_forward_recv_backward). The later SENDs of the batch
  // are done when their turn comes.
  absl::Status BatchSends(size_t index) {
    std::vector<comm::P2POp> ops;
    std::vector<size_t> sends;
    for (size_t j = index; IsSend(j); ++j) {
      absl::StatusOr<Tensor> tensor = TakeSendTensor(j);
      if (!tensor.ok()) {
        if (j == index) return tensor.status();
        break;  // Reported by SEND j itself.
      }
      PendingSend send;
      send.tensor = *std::move(tensor);
      send.what = actions_[j].ToString();
      ops.push_back(comm::P2POp::Send(AsConstCommBuffer(send.tensor), actions_[j].peer_stage,
                                      TagOf(actions_[j].kind)));
      sends_.push_back(std::move(send));
      sends.push_back(j);
    }
    std::optional<size_t> receive_index;
    PostedReceive receive;
    if (batch_sends_with_receive_) receive_index = NextReceiveToPost(sends.back() + 1);
    if (receive_index.has_value()) {
      receive = ReceiveBuffer(*receive_index);
      ops.push_back(comm::P2POp::Recv(AsCommBuffer(receive.buffer),
                                      actions_[*receive_index].peer_stage,
                                      TagOf(actions_[*receive_index].kind)));
    }
    std::shared_ptr<comm::CommHandle> handle = pp_->BatchSendRecvAsync(ops);
    for (size_t k = 0; k < sends.size(); ++k) sends_[sends_.size() - 1 - k].handle = handle;
    for (size_t j : sends) started_sends_.insert(j);
    if (receive_index.has_value()) {
      receive.handle = std::move(handle);
      posted_.emplace(*receive_index, std::move(receive));
      next_unposted_ = *receive_index + 1;
    }
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
        if (pp_ == nullptr) {
          return absl::FailedPreconditionError("a transfer needs the pipeline communicator");
        }
        if (started_sends_.erase(index) > 0) return absl::OkStatus();  // Batched earlier.
        return BatchSends(index);
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
  // SENDs started by the batch of an earlier SEND.
  absl::flat_hash_set<size_t> started_sends_;
  // Whether a SEND's batch may carry the next receive, whose RECV then also
  // waits for the sends of its batch. Only for lists where every stage talks
  // to its two neighbours with one kind of message each way (non-interleaved
  // schedules): there the peer posts the receive of every message in the order
  // it was sent, without waiting for anything this stage does later, so the
  // extra wait cannot deadlock. Interleaved lists with two stages send both
  // kinds to one peer, which may consume them in another order.
  const bool batch_sends_with_receive_;
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
