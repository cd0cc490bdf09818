#!/bin/bash
# ZeRO 3 under bf16 and fp16 with MPI: 2 processes (dp 2, --zero_stage=3)
# all-gather 16-bit value shards through the MPI backend and give the local
# backend's losses (relative 1e-5: MPI's reduce-scatter may add in another
# order than the local backend's rank order) and the same dp bytes per step,
# fewer than the fp32 run's (its value all-gathers move 4-byte values; the
# exact halving is //tests/equivalence:zero_comm_volume_test's). Every run is
# bounded by `timeout`.
set -euo pipefail

train="$(realpath "$1")"
prepare_data="$(realpath "$2")"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_zero3_precision_mpi"
rm -rf "$work" && mkdir -p "$work"
export HOME="$work/home"
fail() { echo "FAIL: $*"; exit 1; }
command -v mpirun >/dev/null 2>&1 || fail "this test needs mpirun (Open MPI) on PATH"

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 300 2
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

cat > "$work/config.textproto" <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: 2 num_heads: 4 hidden_size: 64 }
layout { data_parallel: 2 micro_batch_size: 1 num_micro_batches: 2 zero_stage: 3 }
optimizer { learning_rate: 3e-3 min_learning_rate: 3e-4 warmup_steps: 2 }
data { train_path: "$work/data/train.bin" val_path: "$work/data/val.bin" seq_length: 32 }
steps: 6
eval_interval: 0
CONFIG

timeout 300 "$train" --config="$work/config.textproto" --backend=local --save= \
  --precision=fp32 --metrics_out="$work/fp32.local.jsonl" > "$work/fp32.local.log" 2>&1 ||
  { cat "$work/fp32.local.log"; fail "fp32 on the local backend"; }
for precision in bf16 fp16; do
  timeout 300 "$train" --config="$work/config.textproto" --backend=local --save= \
    --precision="$precision" --metrics_out="$work/$precision.local.jsonl" \
    > "$work/$precision.local.log" 2>&1 ||
    { cat "$work/$precision.local.log"; fail "$precision on the local backend"; }
  timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
    "$train" --config="$work/config.textproto" --backend=mpi --save= \
    --precision="$precision" --metrics_out="$work/$precision.mpi.jsonl" \
    > "$work/$precision.mpi.log" 2>&1 ||
    { cat "$work/$precision.mpi.log"; fail "$precision under mpirun -np 2"; }
done
/usr/bin/python3 - "$work" <<'PY'
import json, math, sys
work = sys.argv[1]
def steps(path):
    return {r["step"]: r for r in map(json.loads, open(path)) if "loss" in r}
fp32 = steps(f"{work}/fp32.local.jsonl")
for precision in ("bf16", "fp16"):
    local = steps(f"{work}/{precision}.local.jsonl")
    mpi = steps(f"{work}/{precision}.mpi.jsonl")
    assert sorted(local) == sorted(mpi) == list(range(1, 7)), (local.keys(), mpi.keys())
    assert all(math.isfinite(r["loss"]) for r in list(local.values()) + list(mpi.values()))
    worst = max(abs(mpi[s]["loss"] - local[s]["loss"]) / abs(local[s]["loss"]) for s in local)
    assert worst <= 1e-5, f"{precision}: relative loss difference {worst:.3g} > 1e-5"
    for s in local:
        assert mpi[s]["dp_bytes_sent"] == local[s]["dp_bytes_sent"], (s, mpi[s], local[s])
        assert local[s]["dp_bytes_sent"] < fp32[s]["dp_bytes_sent"], (s, local[s], fp32[s])
    print(f"{precision} ZeRO 3: mpirun -np 2 against the local backend, worst relative loss "
          f"difference {worst:.3g}; dp bytes per step {local[1]['dp_bytes_sent']} "
          f"(fp32: {fp32[1]['dp_bytes_sent']})")
PY
echo "PASS"
