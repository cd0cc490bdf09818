// Predicts step time and memory per rank for a layout at any scale
// (planning/planner.h), saying where each number comes from.
//
//   bazel run //tools:plan -- --config=FILE --hardware=FILE
//       [--precision=fp32|bf16|fp16] [--json] [--explain]
//
// FILE is a TrainConfig textproto (model, layout, data.seq_length); the
// layout flags of //tools:train (--tp, --pp, --dp, ...) override it. The
// layout is validated for its own world size (tp x pp x dp), not this
// machine's.

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "core/io/user_path.h"
#include "planning/planner.h"
#include "tools/config_flags.h"

ABSL_FLAG(std::string, hardware, "", "Hardware textproto (configs/hardware/*.textproto)");
ABSL_FLAG(bool, json, false, "print one JSON object");
ABSL_FLAG(bool, explain, false, "print every term, its value and formula");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using namespace trident;
  auto fail = [](const absl::Status& status) {
    std::fprintf(stderr, "plan: %s\n", std::string(status.message()).c_str());
    return 1;
  };
  if (absl::GetFlag(FLAGS_hardware).empty()) {
    return fail(absl::InvalidArgumentError("--hardware=FILE is required"));
  }
  auto config = tools::TrainConfigFromFlags();
  if (!config.ok()) return fail(config.status());
  // --precision is the config's (tools/config_flags.h), as //tools:train's.
  const planning::Precision precision = config->precision();
  auto hardware = planning::LoadHardware(io::ResolveUserPath(absl::GetFlag(FLAGS_hardware)));
  if (!hardware.ok()) return fail(hardware.status());
  auto plan = planning::PlanStep(*config, *hardware, precision);
  if (!plan.ok()) return fail(plan.status());
  if (absl::GetFlag(FLAGS_explain)) std::printf("%s", planning::PlanToText(*plan).c_str());
  if (absl::GetFlag(FLAGS_json)) {
    std::printf("%s\n", planning::PlanToJson(*plan).c_str());
  } else if (!absl::GetFlag(FLAGS_explain)) {
    const auto& m = plan->memory;
    std::printf(
        "step %.4g s, %.4g tokens/s, MFU %.1f%%, bubble %.1f%%; memory per rank %.3g GB "
        "(parameters %.3g, gradients %.3g, optimizer state %.3g, activations %.3g, "
        "communication buffers %.3g)\n",
        plan->step_time_s, plan->tokens_per_s, 100 * plan->mfu, 100 * plan->bubble_fraction,
        m.total() / 1e9, m.parameters / 1e9, m.gradients / 1e9, m.optimizer_state / 1e9,
        m.activations / 1e9, m.communication_buffers / 1e9);
  }
  return 0;
}
