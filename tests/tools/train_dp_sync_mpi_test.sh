#!/bin/bash
# Local SGD and gossip under MPI (issue 12): 3 processes (dp 3, so gossip has
# two distinct neighbours) train with --dp_sync=gossip and with
# --dp_sync=local_sgd --local_sgd_steps=2, and give the local backend's losses
# (relative 1e-5: MPI's all-reduce may add in another order than the local
# backend's rank order). Gossip sends 8 P bytes per rank and step (P the
# model's parameters) plus the loss all-gather's 16. Every run is bounded by
# `timeout`.
set -euo pipefail

train="$(realpath "$1")"
prepare_data="$(realpath "$2")"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_dp_sync_mpi"
rm -rf "$work" && mkdir -p "$work"
export HOME="$work/home"
fail() { echo "FAIL: $*"; exit 1; }
command -v mpirun >/dev/null 2>&1 || fail "this test needs mpirun (Open MPI) on PATH"

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 300 2
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

cat > "$work/config.textproto" <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: 2 num_heads: 4 hidden_size: 64 }
layout { data_parallel: 3 micro_batch_size: 1 num_micro_batches: 2 }
optimizer { learning_rate: 3e-3 min_learning_rate: 3e-4 warmup_steps: 2 }
data { train_path: "$work/data/train.bin" val_path: "$work/data/val.bin" seq_length: 32 }
steps: 6
eval_interval: 0
CONFIG

for mode in "gossip" "local_sgd --local_sgd_steps=2"; do
  name="${mode%% *}"
  # shellcheck disable=SC2086  # the mode's flags are words
  timeout 300 "$train" --config="$work/config.textproto" --backend=local --save= \
    --dp_sync=$mode --metrics_out="$work/$name.local.jsonl" > "$work/$name.local.log" 2>&1 ||
    { cat "$work/$name.local.log"; fail "$name on the local backend"; }
  # shellcheck disable=SC2086
  timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 3 \
    "$train" --config="$work/config.textproto" --backend=mpi --save= \
    --dp_sync=$mode --metrics_out="$work/$name.mpi.jsonl" > "$work/$name.mpi.log" 2>&1 ||
    { cat "$work/$name.mpi.log"; fail "$name under mpirun -np 3"; }
done
params="$(sed -n 's/^model: \([0-9]*\) parameters.*/\1/p' "$work/gossip.local.log")"
[[ -n "$params" ]] || { cat "$work/gossip.local.log"; fail "no parameter count in the log"; }
/usr/bin/python3 - "$work" "$params" <<'PY'
import json, sys
work, params = sys.argv[1], int(sys.argv[2])
def steps(path):
    return {r["step"]: r for r in map(json.loads, open(path)) if "loss" in r}
for name in ("gossip", "local_sgd"):
    local, mpi = steps(f"{work}/{name}.local.jsonl"), steps(f"{work}/{name}.mpi.jsonl")
    assert sorted(local) == sorted(mpi) == list(range(1, 7)), (local.keys(), mpi.keys())
    worst = max(abs(mpi[s]["loss"] - local[s]["loss"]) / abs(local[s]["loss"]) for s in local)
    assert worst <= 1e-5, f"{name}: relative loss difference {worst:.3g} > 1e-5"
    print(f"{name}: mpirun -np 3 against the local backend, worst relative loss difference "
          f"{worst:.3g}")
    if name == "gossip":
        for s in local:
            for run in (local, mpi):
                assert run[s]["dp_bytes_sent"] == 8 * params + 16, (s, run[s], params)
PY
