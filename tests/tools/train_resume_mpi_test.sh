#!/bin/bash
# Resuming compressed and local SGD runs under MPI (issue 12): 2 processes
# (dp 2), each its own address space, save after step 3 of 6 and resume; the
# resumed steps 4-6 must equal the uninterrupted run's bit for bit (the
# metrics' losses are printed with every digit of the double) for int8,
# adaptive Top-K, PowerSGD and local SGD (H = 4: the save falls mid-phase).
# The resumed run must say that it restored the compression state. Every run
# is bounded by `timeout`.
set -euo pipefail

train="$(realpath "$1")"
prepare_data="$(realpath "$2")"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_resume_mpi"
rm -rf "$work" && mkdir -p "$work"
export HOME="$work/home"
fail() { echo "FAIL: $*"; exit 1; }
command -v mpirun >/dev/null 2>&1 || fail "this test needs mpirun (Open MPI) on PATH"

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 300 2
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

cat > "$work/config.textproto" <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: 2 num_heads: 4 hidden_size: 64 }
layout { data_parallel: 2 micro_batch_size: 2 num_micro_batches: 1 grad_bucket_mb: 0.02 }
optimizer { learning_rate: 3e-3 min_learning_rate: 3e-4 warmup_steps: 2 }
data { train_path: "$work/data/train.bin" val_path: "$work/data/val.bin" seq_length: 32 }
steps: 6
eval_interval: 0
CONFIG

mpi() {  # name, flags...
  local name="$1"
  shift
  timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
    "$train" --config="$work/config.textproto" --backend=mpi \
    --metrics_out="$work/$name.jsonl" "$@" > "$work/$name.log" 2>&1 ||
    { cat "$work/$name.log"; fail "$name under mpirun -np 2"; }
}

names=()
for mode in "int8 --gradient_compression=int8" \
            "topk_adaptive --gradient_compression=topk --topk_adaptive" \
            "powersgd --gradient_compression=powersgd --powersgd_rank=2" \
            "local_sgd --dp_sync=local_sgd --local_sgd_steps=4"; do
  name="${mode%% *}"
  read -r -a flags <<<"${mode#* }"
  names+=("$name")
  mpi "$name.whole" "${flags[@]}" --save=
  mpi "$name.head" "${flags[@]}" --save="$work/$name.ckpt" --stop_at_step=3
  mpi "$name.resumed" "${flags[@]}" --save= --resume="$work/$name.ckpt"
  if [[ "$name" != local_sgd ]]; then
    grep -q "restored the gradient compression state" "$work/$name.resumed.log" ||
      { cat "$work/$name.resumed.log"; fail "$name: no line saying the state was restored"; }
  fi
done
/usr/bin/python3 - "$work" "${names[@]}" <<'PY'
import json, sys
work, names = sys.argv[1], sys.argv[2:]
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path))
            if "loss" in r and "step" in r}
for name in names:
    whole, resumed = losses(f"{work}/{name}.whole.jsonl"), losses(f"{work}/{name}.resumed.jsonl")
    assert sorted(whole) == list(range(1, 7)), (name, sorted(whole))
    assert sorted(resumed) == [4, 5, 6], (name, sorted(resumed))
    for s in resumed:
        assert resumed[s] == whole[s], f"{name} step {s}: resumed {resumed[s]!r}, whole {whole[s]!r}"
    print(f"{name}: steps 4-6 resumed under mpirun -np 2 equal the uninterrupted run's bit for bit")
PY
