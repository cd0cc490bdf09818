#!/bin/bash
# The planner against runs here: for each layout below, trains the default
# job (//tools:train, local backend, --steps steps, no validation or
# checkpoint) and plans it on this machine's hardware file (//tools:plan),
# then prints a Markdown table of step time, replayed makespan and peak
# memory per rank, predicted and measured, with the error of each row and the
# median and largest absolute errors. Measured: the median step after the
# first (wall clock: other processes on the machine lengthen it); the
# schedule replayed on its actions' measured durations by //tools:bubble_profile
# (thread CPU time with one thread per rank: as if each rank had a core of its
# own, which other load does not inflate), against the planner's
# pipeline_makespan_s; the largest rank's parameters + gradients + optimizer
# state + activation peak after step 1 (the metrics JSONL memory lines).
#
#   tools/plan_vs_train.sh [--steps=K] [--hardware=FILE] [--train=BIN] [--plan=BIN]
#       [--bubble_profile=BIN]
#
# Run from the repository root after
# `./bazelw build //tools:train //tools:plan //tools:bubble_profile`.
set -euo pipefail
steps=8
hardware=configs/hardware/cpu_2core.textproto
train=bazel-bin/tools/train
plan=bazel-bin/tools/plan
bubble_profile=bazel-bin/tools/bubble_profile
for arg in "$@"; do
  case "$arg" in
    --steps=*) steps="${arg#*=}" ;;
    --hardware=*) hardware="${arg#*=}" ;;
    --train=*) train="${arg#*=}" ;;
    --plan=*) plan="${arg#*=}" ;;
    --bubble_profile=*) bubble_profile="${arg#*=}" ;;
    *) echo "plan_vs_train: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[[ "$steps" =~ ^[0-9]+$ && "$steps" -ge 2 ]] || { echo "plan_vs_train: --steps=$steps must be >= 2" >&2; exit 2; }

# The default job's model and global batch (8 x 128 tokens); one layout a line.
layouts=(
  "--tp=1 --pp=1 --dp=1"
  "--tp=1 --pp=1 --dp=2"
  "--tp=2 --pp=1 --dp=1"
  "--tp=1 --pp=2 --dp=1 --micro_batch_size=1 --schedule=1f1b"
  "--tp=2 --pp=2 --dp=2"
  "--tp=2 --pp=2 --dp=2 --recompute=full"
  "--tp=2 --pp=1 --dp=2 --sequence_parallel --zero_stage=1"
  "--tp=1 --pp=1 --dp=4 --zero_stage=2"
  "--tp=1 --pp=1 --dp=2 --zero_stage=3"
  "--tp=1 --pp=2 --dp=4 --micro_batch_size=1 --schedule=1f1b"
  "--tp=1 --pp=4 --dp=2 --micro_batch_size=1 --schedule=zb-h1"
  "--tp=4 --pp=2 --dp=1 --micro_batch_size=1 --schedule=interleaved --virtual_stages=2"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$work/results.tsv"
load_before=$(cut -d' ' -f1 /proc/loadavg)
for layout in "${layouts[@]}"; do
  # shellcheck disable=SC2086
  "$train" $layout --steps="$steps" --eval_interval=0 --save= --overwrite \
    --metrics_out="$work/metrics.jsonl" > "$work/train.log" 2>&1 ||
    { cat "$work/train.log" >&2; exit 1; }
  # shellcheck disable=SC2086
  "$plan" $layout --hardware="$hardware" --json > "$work/plan.json"
  # shellcheck disable=SC2086
  "$bubble_profile" $layout --warmup_steps=1 --profile_steps=3 --out_dir="$work/profile" \
    > "$work/profile.log" 2>&1 || { cat "$work/profile.log" >&2; exit 1; }
  /usr/bin/python3 - "$layout" "$work/metrics.jsonl" "$work/plan.json" \
    "$work/profile/summary.csv" >> "$results" <<'PY'
import csv, json, statistics, sys
layout, metrics, plan, profile = sys.argv[1:]
replayed = next(float(r["busy_ms"]) + float(r["idle_ms"]) for r in csv.DictReader(open(profile))
                if r["source"] == "replay") / 1e3
steps, memory = [], 0
for line in open(metrics):
    j = json.loads(line)
    if "loss" in j:
        steps.append(j["step_time_ms"] / 1e3)
    elif "activation_peak_bytes" in j:
        memory = max(memory, j["param_bytes"] + j["grad_bytes"] + j["optimizer_state_bytes"]
                     + j["activation_peak_bytes"])
p = json.load(open(plan))
print("\t".join([layout, repr(statistics.median(steps[1:])), repr(p["step_time_s"]), repr(memory),
                 repr(p["memory_bytes_per_rank"]["total"]), repr(replayed),
                 repr(p["pipeline_makespan_s"])]))
PY
done

load_after=$(cut -d' ' -f1 /proc/loadavg)
/usr/bin/python3 - "$results" "$steps" "$hardware" "$load_before" "$load_after" "$(nproc)" <<'PY'
import statistics, sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
print(f"Plan ({sys.argv[3]}) against //tools:train, {sys.argv[2]} steps per layout "
      "(median step after the first):\n")
print("| layout | step ms: predicted | measured | error | makespan ms: predicted | replayed | "
      "error | MB per rank: predicted | measured | error |")
print("|---|---|---|---|---|---|---|---|---|---|")
time_err, span_err, mem_err = [], [], []
for layout, meas_s, pred_s, meas_b, pred_b, meas_m, pred_m in rows:
    meas_s, pred_s, meas_b, pred_b, meas_m, pred_m = map(
        float, (meas_s, pred_s, meas_b, pred_b, meas_m, pred_m))
    et, em, es = (pred_s - meas_s) / meas_s, (pred_b - meas_b) / meas_b, (pred_m - meas_m) / meas_m
    time_err.append(abs(et)); mem_err.append(abs(em)); span_err.append(abs(es))
    print(f"| `{layout}` | {pred_s*1e3:.1f} | {meas_s*1e3:.1f} | {100*et:+.0f}% | "
          f"{pred_m*1e3:.1f} | {meas_m*1e3:.1f} | {100*es:+.0f}% | "
          f"{pred_b/1e6:.2f} | {meas_b/1e6:.2f} | {100*em:+.1f}% |")
print(f"\n{len(rows)} layouts. Step time: median absolute error "
      f"{100*statistics.median(time_err):.0f}%, largest {100*max(time_err):.0f}%. Replayed "
      f"makespan: median {100*statistics.median(span_err):.0f}%, largest "
      f"{100*max(span_err):.0f}%. Memory per rank: "
      f"median absolute error {100*statistics.median(mem_err):.1f}%, largest {100*max(mem_err):.1f}%. "
      f"1-minute load average {sys.argv[4]} before, {sys.argv[5]} after ({sys.argv[6]} cores).")
PY
