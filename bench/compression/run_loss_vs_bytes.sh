#!/usr/bin/env bash
# Trains the default model and an 8-layer model at dp = 4 on the Brown corpus
# once per gradient-sync mode and keeps each run's metrics (one JSONL per run)
# for make_loss_vs_bytes.py, which writes the README table and
# docs/compression_loss_vs_bytes.svg.
#
# Usage: bench/compression/run_loss_vs_bytes.sh TRAIN_BINARY OUT_DIR [MODE...]
#   TRAIN_BINARY  a built //tools:train (copy it out of bazel-bin first, so a
#                 rebuild does not change it mid-run)
#   OUT_DIR       receives <model>__<mode>.jsonl and .log per run
#   MODE          a subset of the modes below (default: all)
# Environment: STEPS (default 300), MODELS (default "default 8layer"), run from the repository root (the default
# config reads data/brown/).
# Runs are sequential: this machine has 2 cores.
set -euo pipefail

train="$1"
out="$2"
shift 2
steps="${STEPS:-300}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$out"

declare -A mode_flags=(
  [none]=""
  [bf16]="--gradient_compression=bf16"
  [fp16]="--gradient_compression=fp16"
  [int8]="--gradient_compression=int8"
  [topk_1pct]="--gradient_compression=topk --topk_ratio=0.01"
  [topk_adaptive]="--gradient_compression=topk --topk_adaptive"
  [powersgd_r4]="--gradient_compression=powersgd --powersgd_rank=4"
  [local_sgd_h4]="--dp_sync=local_sgd --local_sgd_steps=4"
  [gossip]="--dp_sync=gossip"
  # Parameter server: 4 workers + 1 server rank (5 ranks), synchronous
  # (staleness 0) and with workers up to 2 steps ahead of the slowest.
  [ps_s0]="--dp_sync=ps --ps_servers=1 --ps_staleness=0"
  [ps_s2]="--dp_sync=ps --ps_servers=1 --ps_staleness=2"
  # Uncompressed with another seed (initialisation and data order): the
  # seed-to-seed spread that the margins of the README are compared with.
  [none_seed4321]="--seed=4321"
)
all_modes=(none bf16 fp16 int8 topk_1pct topk_adaptive powersgd_r4 local_sgd_h4 gossip ps_s0 ps_s2)
modes=("$@")
((${#modes[@]})) || modes=("${all_modes[@]}")

declare -A model_config=(
  [default]=""
  [8layer]="--config=$here/gpt_8layer.textproto"
)

for model in ${MODELS:-default 8layer}; do
  for mode in "${modes[@]}"; do
    [[ -v "model_config[$model]" ]] || { echo "unknown model $model" >&2; exit 2; }
    [[ -v "mode_flags[$mode]" ]] || { echo "unknown mode $mode" >&2; exit 2; }
    name="${model}__${mode}"
    echo "$(date -u +%T) $name" >&2
    # shellcheck disable=SC2086  # flags are words
    "$train" ${model_config[$model]} --steps="$steps" --tp=1 --pp=1 --dp=4 \
      --eval_interval=100 --save= --overwrite --metrics_out="$out/$name.jsonl" \
      ${mode_flags[$mode]} >"$out/$name.log" 2>&1
  done
done
