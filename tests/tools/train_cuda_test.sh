#!/bin/bash
# //tools:train --device=cuda as scripts drive it, on any machine: refused by
# name, before step 1 and before any output is written, for a layout other
# than the serial one (no NCCL communicators yet) and for --backend=mpi; and,
# on a build without CUDA or a machine without a GPU, refused naming which.
# (Training on a GPU is tested by //training/cuda:cuda_train_test.)
set -euo pipefail

train="$1"
prepare_data="$2"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_cuda"
rm -rf "$work" && mkdir -p "$work"

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 100 1
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null
{ tiny_job "$work/data" 2; echo "steps: 2"; echo "eval_interval: 0"; } > "$work/config.textproto"

# expect_refusal NAME MESSAGE [train flags...]: exits 1 printing MESSAGE,
# without a step and without the metrics file.
expect_refusal() {
  local name="$1" message="$2"
  shift 2
  local rc=0
  timeout 60 "$train" --config="$work/config.textproto" --metrics_out="$work/$name.jsonl" \
    --save= --device=cuda "$@" > "$work/$name.log" 2>&1 || rc=$?
  if [[ "$rc" != 1 ]]; then cat "$work/$name.log"; echo "FAIL: $name exited $rc, expected 1"; exit 1; fi
  grep -qE -- "$message" "$work/$name.log" ||
    { cat "$work/$name.log"; echo "FAIL: $name: no \"$message\""; exit 1; }
  if grep -q "^step " "$work/$name.log" || [[ -e "$work/$name.jsonl" ]]; then
    cat "$work/$name.log"; echo "FAIL: $name trained or wrote before failing"; exit 1
  fi
  echo "ok: $name"
}

# Checked before the GPU is looked for: the same answer with or without one.
expect_refusal tp2 "--device=cuda is not supported yet: with tensor_parallel=2, pipeline_parallel=1, data_parallel=1: .*NCCL communicators are not built yet" --tp=2
expect_refusal dp2_pp2 "with tensor_parallel=1, pipeline_parallel=2, data_parallel=2: .*NCCL communicators are not built yet" --pp=2 --dp=2 --micro_batch_size=1 --global_batch_size=8
expect_refusal mpi_backend "--backend=mpi is not supported yet: with --device=cuda" --backend=mpi

# The serial layout: refused on a build without CUDA or a machine without a
# GPU; where a GPU is visible it trains (and //training/cuda tests that).
rc=0
timeout 300 "$train" --config="$work/config.textproto" --metrics_out="$work/serial.jsonl" --save= \
  --device=cuda > "$work/serial.log" 2>&1 || rc=$?
if [[ "$rc" == 0 ]]; then
  grep -q "^device: cuda:0 " "$work/serial.log" || { cat "$work/serial.log"; echo "FAIL: no device line"; exit 1; }
  echo "ok: a GPU is visible here, and the serial layout trained on it"
else
  expect_refusal no_gpu "--device=cuda( is not supported yet: this binary was built without CUDA|: no GPU is visible: )"
fi
echo "PASS"
