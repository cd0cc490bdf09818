#ifndef TRIDENT_PIPELINE_SCHEDULE_H_
#define TRIDENT_PIPELINE_SCHEDULE_H_

// Pipeline schedules as data (DESIGN.md rule 6). A generator emits, for each
// pipeline stage (rank in the pp group), the ordered list of actions that stage
// performs in one training step. The checker (simulator.h) proves a list
// complete and deadlock-free, the executor runs it, the profiler stamps it.
//
// Vocabulary:
//   p = number of stages, m = micro-batches per step, v = model chunks
//   ("virtual stages") per stage. The model is cut into p * v model chunks;
//   local chunk c of stage s holds model chunk c * p + s (Megatron's
//   interleaving), so with v = 1 stage s simply holds model chunk s.
//
// The backward pass is always split (DESIGN.md rule 4): B computes the
// gradient of the chunk's input, W the gradient of its weights. Every schedule
// emits B and W as separate actions; the plain schedules (GPipe, 1F1B,
// interleaved) put W right after its B, ZB-H1 delays W to fill bubbles.
//
// Point-to-point transfers are explicit actions: a RECV sits right before the
// F/B that consumes the data, a SEND right after the F/B that produced it.
// Sends are asynchronous (buffered); a receive blocks until the matching send
// was issued. Between two stages, messages of one kind (activation or gradient)
// are matched in order. Hand-offs between two chunks of the same stage (only
// possible with p = 1) need no transfer and emit none.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace trident::pipeline {

enum class ActionKind {
  kForward,         // F: forward of one micro-batch through one chunk.
  kBackwardInput,   // B: gradient with respect to the chunk's input.
  kBackwardWeight,  // W: gradient with respect to the chunk's weights.
  kSendActivation,  // forward output to the stage holding the next model chunk.
  kRecvActivation,  // forward input from the stage holding the previous chunk.
  kSendGradient,    // input gradient to the stage holding the previous chunk.
  kRecvGradient,    // output gradient from the stage holding the next chunk.
};

// Short names used in text: "F", "B", "W", "SEND_ACT", "RECV_ACT", "SEND_GRAD",
// "RECV_GRAD".
absl::string_view ActionKindName(ActionKind kind);
bool IsCompute(ActionKind kind);

struct Action {
  ActionKind kind = ActionKind::kForward;
  int micro_batch = 0;
  // Local chunk index on this stage (0 <= chunk < v). For transfers: the local
  // chunk whose F/B produces (send) or consumes (receive) the data.
  int chunk = 0;
  // The other stage of a transfer; -1 for compute actions.
  int peer_stage = -1;

  bool operator==(const Action& other) const = default;
  // "F(mb=3, chunk=1)", "SEND_ACT(mb=3, chunk=1, peer=2)".
  std::string ToString() const;
};

enum class ScheduleKind { kGPipe, kOneFOneB, kInterleaved1F1B, kZeroBubbleH1 };

// Its name in core/schedule_names.h ("gpipe", "1f1b", "interleaved", "zb-h1").
absl::string_view ScheduleKindName(ScheduleKind kind);
absl::StatusOr<ScheduleKind> ParseScheduleKind(absl::string_view name);

struct Schedule {
  ScheduleKind kind = ScheduleKind::kOneFOneB;
  int num_stages = 1;        // p
  int num_micro_batches = 1; // m
  int num_chunks = 1;        // v, model chunks per stage
  // Only F actions (and activation transfers): evaluation. The checker then
  // expects no B or W.
  bool forward_only = false;
  // stages[s] is the ordered action list of stage s.
  std::vector<std::vector<Action>> stages;

  int NumModelChunks() const { return num_stages * num_chunks; }
  int ModelChunk(int stage, int chunk) const { return chunk * num_stages + stage; }
  int StageOfModelChunk(int model_chunk) const { return model_chunk % num_stages; }
  int ChunkOfModelChunk(int model_chunk) const { return model_chunk / num_stages; }
};

// Generators. Each checks its arguments (p >= 1, m >= 1, v >= 1; v == 1 for
// all but interleaved; interleaved with p > 1 needs m % p == 0) and returns
// InvalidArgument naming the parameter and the rule otherwise.
//
// GPipe: all m forwards, then the backwards in micro-batch order (B then W).
absl::StatusOr<Schedule> MakeGPipeSchedule(int num_stages, int num_micro_batches);
// 1F1B (PipeDream-Flush): stage s runs min(p - s - 1, m) warm-up forwards,
// then alternates one forward with one backward (B, W), then drains the
// remaining backwards. At most p - s micro-batches are in flight on stage s.
absl::StatusOr<Schedule> MakeOneFOneBSchedule(int num_stages, int num_micro_batches);
// Interleaved 1F1B (Narayanan et al. 2021): forwards visit the local chunks in
// groups of p micro-batches (p micro-batches through chunk 0, the same p
// through chunk 1, ...), backwards visit them in reverse chunk order; stage s
// warms up with min((v - 1) * p + 2 * (p - s - 1), m * v) forwards.
absl::StatusOr<Schedule> MakeInterleavedSchedule(int num_stages, int num_micro_batches,
                                                 int num_chunks);
// ZB-H1 (Qi et al. 2023): the F/B order of 1F1B, but stage s lets its W passes
// lag s backward passes behind (W(j) follows B(j + s)); the delayed W passes
// fill what would be the cool-down bubble. Stage s keeps at most p - s
// micro-batches between F and B (as 1F1B) and at most p between F and W, which
// is 1F1B's peak (stage 0); W needs less memory than B, as the paper notes.
absl::StatusOr<Schedule> MakeZeroBubbleH1Schedule(int num_stages, int num_micro_batches);

// Forward passes only, for evaluation: each stage runs its chunks' forwards
// micro-batch by micro-batch, in model-chunk order (activations are freed by
// the caller as soon as they are used). `kind` is only recorded.
absl::StatusOr<Schedule> MakeForwardOnlySchedule(int num_stages, int num_micro_batches,
                                                 int num_chunks = 1);

// Dispatches on `kind`; `num_chunks` must be 1 unless kind is interleaved.
absl::StatusOr<Schedule> MakeSchedule(ScheduleKind kind, int num_stages, int num_micro_batches,
                                      int num_chunks = 1);

}  // namespace trident::pipeline

#endif  // TRIDENT_PIPELINE_SCHEDULE_H_
