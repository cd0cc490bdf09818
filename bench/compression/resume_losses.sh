#!/usr/bin/env bash
# Resuming compressed, local SGD and gossip runs (issue 12): for each mode,
# the default model at dp = 4 on the Brown corpus trains STEPS steps
# uninterrupted, then SAVE_AT steps with a checkpoint, then the rest resumed
# from it; for the compression modes also resumed from a copy of that
# checkpoint whose meta no longer says it holds the compressors' state (what
# a checkpoint of an older version gives: error feedback from zero). With
# BEFORE_TRAIN (a //tools:train built before checkpoints kept the replicas
# apart), local SGD and gossip are also run whole, saved and resumed by it.
# Prints, per mode, the largest |loss difference| to the uninterrupted run
# over the resumed steps, exact and with the state lost, and the difference
# at the last step with the state lost.
#
# Usage: bench/compression/resume_losses.sh TRAIN_BINARY OUT_DIR
#   TRAIN_BINARY  a built //tools:train (copied out of bazel-bin first)
#   OUT_DIR       receives every run's metrics JSONL and log
# Environment: STEPS (default 100), SAVE_AT (default 50), BEFORE_TRAIN. Run from the
# repository root (the default config reads data/brown/). Sequential: 2 cores.
set -euo pipefail

train="$1"
out="$2"
steps="${STEPS:-100}"
save_at="${SAVE_AT:-50}"
mkdir -p "$out"

declare -A mode_flags=(
  [int8]="--gradient_compression=int8"
  [topk_1pct]="--gradient_compression=topk --topk_ratio=0.01"
  [topk_adaptive]="--gradient_compression=topk --topk_adaptive"
  [powersgd_r4]="--gradient_compression=powersgd --powersgd_rank=4"
  [local_sgd_h8]="--dp_sync=local_sgd --local_sgd_steps=8"
  [gossip]="--dp_sync=gossip"
)
modes=(int8 topk_1pct topk_adaptive powersgd_r4 local_sgd_h8 gossip)

run() {  # binary, name, flags...
  local binary="$1" name="$2"
  shift 2
  "$binary" --tp=1 --pp=1 --dp=4 --steps="$steps" --metrics_out="$out/$name.jsonl" "$@" \
    >"$out/$name.log" 2>&1
}

# Largest |difference| of the losses of steps > SAVE_AT, and the last one's.
compare() {  # whole.jsonl resumed.jsonl
  /usr/bin/python3 - "$1" "$2" "$save_at" <<'PY'
import json, sys
def losses(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        if "loss" in r and "step" in r and "val_loss" not in r:
            out[r["step"]] = r["loss"]
    return out
whole, resumed, save_at = losses(sys.argv[1]), losses(sys.argv[2]), int(sys.argv[3])
steps = sorted(s for s in resumed if s > save_at)
assert steps and all(s in whole for s in steps), "missing steps"
diffs = [abs(resumed[s] - whole[s]) for s in steps]
print(f"{max(diffs):.3e} {diffs[-1]:.3e} {len(steps)}")
PY
}

printf '%-14s %-20s %-20s %-20s\n' mode "max|d| exact" "max|d| state lost" "step $steps state lost"
for mode in "${modes[@]}"; do
  read -r -a flags <<<"${mode_flags[$mode]}"
  rm -rf "$out/$mode.ckpt" "$out/$mode.ckpt_old"
  run "$train" "$mode.whole" "${flags[@]}" --save=
  run "$train" "$mode.head" "${flags[@]}" --stop_at_step="$save_at" --save="$out/$mode.ckpt"
  run "$train" "$mode.resumed" "${flags[@]}" --resume="$out/$mode.ckpt" --save=
  read -r with last_with n <<<"$(compare "$out/$mode.whole.jsonl" "$out/$mode.resumed.jsonl")"
  without="-"
  last_without="-"
  ckpt="$out/$mode.ckpt/step_$(printf '%08d' "$save_at")"
  if grep -q holds_compression_state "$ckpt/meta.textproto"; then
    cp -r "$ckpt" "$out/$mode.ckpt_old"
    sed -i '/holds_compression_state/d' "$out/$mode.ckpt_old/meta.textproto"
    run "$train" "$mode.resumed_old" "${flags[@]}" --resume="$out/$mode.ckpt_old" --save=
    read -r without last_without n <<<"$(compare "$out/$mode.whole.jsonl" \
      "$out/$mode.resumed_old.jsonl")"
  elif [[ -n "${BEFORE_TRAIN:-}" ]]; then
    rm -rf "$out/$mode.before_ckpt"
    run "$BEFORE_TRAIN" "$mode.before_whole" "${flags[@]}" --save=
    run "$BEFORE_TRAIN" "$mode.before_head" "${flags[@]}" --stop_at_step="$save_at" \
      --save="$out/$mode.before_ckpt"
    run "$BEFORE_TRAIN" "$mode.before_resumed" "${flags[@]}" --resume="$out/$mode.before_ckpt" \
      --save=
    read -r without last_without n <<<"$(compare "$out/$mode.before_whole.jsonl" \
      "$out/$mode.before_resumed.jsonl")"
  fi
  printf '%-14s %-20s %-20s %-20s\n' "$mode" "$with" "$without" "$last_without"
done
