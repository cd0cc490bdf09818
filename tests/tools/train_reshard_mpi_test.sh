#!/bin/bash
# Resharding under MPI (issue 14): 4 processes train tp2 x pp2 and save at
# step 3; 2 processes resume it with dp2 (each reading only its windows from
# the 4 rank files) and continue the uninterrupted run's loss curve (relative
# 1e-5). Every run is bounded by `timeout`.
set -euo pipefail

train="$(realpath "$1")"
prepare_data="$(realpath "$2")"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_reshard_mpi"
rm -rf "$work" && mkdir -p "$work"
export HOME="$work/home"
fail() { echo "FAIL: $*"; exit 1; }
command -v mpirun >/dev/null 2>&1 || fail "this test needs mpirun (Open MPI) on PATH"

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 300 2
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

cat > "$work/config.textproto" <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: 4 num_heads: 4 hidden_size: 64 }
layout { micro_batch_size: 1 num_micro_batches: 8 }
optimizer { learning_rate: 3e-3 min_learning_rate: 3e-4 warmup_steps: 2 }
data { train_path: "$work/data/train.bin" val_path: "$work/data/val.bin" seq_length: 32 }
steps: 6
eval_interval: 0
CONFIG

mpi() {  # NP ARGS...: //tools:train under mpirun, at most 300 s
  local np="$1"
  shift
  timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$np" \
    "$train" --config="$work/config.textproto" --backend=mpi "$@"
}
mpi 4 --tp=2 --pp=2 --micro_batches=8 --save="$work/ckpt" --save_interval=3 --keep_last=5 \
  --metrics_out="$work/whole.jsonl" > "$work/whole.log" 2>&1 ||
  { cat "$work/whole.log"; fail "the uninterrupted run (mpirun -np 4, tp2 x pp2)"; }
[[ "$(ls "$work/ckpt/step_00000003" | grep -c '^rank_.*\.tensors$')" == 4 ]] ||
  { ls "$work/ckpt/step_00000003"; fail "the checkpoint does not hold 4 rank files"; }
mpi 2 --dp=2 --micro_batches=4 --resume="$work/ckpt/step_00000003" --save= \
  --metrics_out="$work/resumed.jsonl" > "$work/resumed.log" 2>&1 ||
  { cat "$work/resumed.log"; fail "the resumed run (mpirun -np 2, dp2)"; }
grep -q "resharding checkpoint .* from 4 ranks (tp=2 pp=2 dp=1 .*) to 2 ranks (tp=1 pp=1 dp=2" \
  "$work/resumed.log" || { cat "$work/resumed.log"; fail "no resharding line"; }
/usr/bin/python3 - "$work/whole.jsonl" "$work/resumed.jsonl" <<'PY'
import json, sys
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path)) if "loss" in r}
whole, resumed = losses(sys.argv[1]), losses(sys.argv[2])
assert sorted(whole) == list(range(1, 7)), whole
assert sorted(resumed) == [4, 5, 6], resumed
worst = max(abs(resumed[s] - whole[s]) / abs(whole[s]) for s in resumed)
assert worst <= 1e-5, f"relative loss difference {worst:.3g} > 1e-5: {whole} vs {resumed}"
print(f"mpirun -np 4 tp2 x pp2 -> mpirun -np 2 dp2: worst relative loss difference {worst:.3g}")
PY
