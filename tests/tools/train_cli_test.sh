#!/bin/bash
# //tools:train from the command line, as scripts drive it: prepares a small
# corpus with //tools:prepare_data, trains the serial layout, then other
# layouts (threads, and MPI processes under mpirun), and checks that every
# metrics file holds the serial losses (relative 1e-5); unsupported flags must
# fail loudly, naming the field.
set -euo pipefail

train="$1"
prepare_data="$2"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_cli"
rm -rf "$work" && mkdir -p "$work"

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 300 2
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

{ tiny_job "$work/data" 2; cat <<CONFIG
steps: 6
eval_interval: 3
eval_batches: 2
CONFIG
} > "$work/config.textproto"

run() {  # run NAME [train flags...]
  local name="$1"
  shift
  "$train" --config="$work/config.textproto" --metrics_out="$work/$name.jsonl" --save= "$@" \
    > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; echo "FAIL: $name exited $?"; exit 1; }
}

compare() {  # compare NAME: the losses of NAME.jsonl equal serial.jsonl's
  /usr/bin/python3 - "$work/serial.jsonl" "$work/$1.jsonl" "$1" <<'PY'
import json, math, sys
def load(path):
    rows = [json.loads(line) for line in open(path)]
    return ([r["loss"] for r in rows if "loss" in r and "val_loss" not in r],
            [r["val_loss"] for r in rows if "val_loss" in r])
(s_train, s_val), (o_train, o_val) = load(sys.argv[1]), load(sys.argv[2])
assert len(s_train) == 6 and len(s_val) == 2, (s_train, s_val)
assert len(o_train) == len(s_train) and len(o_val) == len(s_val), (o_train, o_val)
for a, b in zip(o_train + o_val, s_train + s_val):
    assert math.isfinite(a) and abs(a - b) <= 1e-5 * abs(b), f"{sys.argv[3]}: {a} vs serial {b}"
print(f"{sys.argv[3]}: {len(o_train)} losses equal the serial run's")
PY
}

run serial --save="$work/ckpt" --export_safetensors="$work/model.safetensors"
grep -q '"tokens_per_s"' "$work/serial.jsonl"
[[ -s "$work/ckpt/latest/meta.textproto" && -s "$work/ckpt/latest/rank_00000.tensors" ]] || { echo "FAIL: no checkpoint"; exit 1; }
# The export is Hugging Face GPT-2 safetensors: its header names wte, wpe, h.N.* and ln_f.
/usr/bin/python3 - "$work/model.safetensors" <<'PY'
import json, struct, sys
blob = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", blob[:8])
header = json.loads(blob[8:8 + n])
meta = header.pop("__metadata__")
assert meta["n_layer"] == "2" and meta["n_embd"] == "32", meta
for name in ["wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.1.mlp.c_proj.bias", "ln_f.weight"]:
    assert name in header, name
assert header["wte.weight"]["shape"] == [256, 32], header["wte.weight"]
assert header["h.0.attn.c_attn.weight"]["shape"] == [32, 96]
print("export: %d tensors with Hugging Face GPT-2 names" % len(header))
PY
run tp2 --tp=2
compare tp2
# ZeRO with dp=1 is allowed: a no-op that the log states, with the serial losses.
run zero2_dp1 --zero_stage=2
grep -q "ZeRO stage 2 with data_parallel=1: nothing to shard" "$work/zero2_dp1.log" ||
  { cat "$work/zero2_dp1.log"; echo "FAIL: ZeRO at dp=1 is not said to be a no-op"; exit 1; }
compare zero2_dp1
run tp2_dp2 --tp=2 --dp=2 --micro_batch_size=1 --micro_batches=2
compare tp2_dp2
run tp2_sp --tp=2 --sequence_parallel
compare tp2_sp

if command -v mpirun >/dev/null 2>&1; then
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
    "$train" --config="$work/config.textproto" --metrics_out="$work/mpi_tp2.jsonl" \
    --save= --backend=mpi --tp=2 > "$work/mpi_tp2.log" 2>&1 || { cat "$work/mpi_tp2.log"; exit 1; }
  compare mpi_tp2
  # Data parallel over processes: the overlapped bucket reduction progresses
  # through CommHandle::Progress, ZeRO 1 reduce-scatters each bucket in place
  # (into its owned window), ZeRO 2 reduce-scatters per micro-batch and
  # ZeRO 3 all-gathers each layer's values per use.
  for zero in 0 1 2 3; do
    mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
      "$train" --config="$work/config.textproto" --metrics_out="$work/mpi_dp2_zero$zero.jsonl" \
      --save= --backend=mpi --dp=2 --micro_batch_size=1 --micro_batches=2 --zero_stage="$zero" \
      > "$work/mpi_dp2_zero$zero.log" 2>&1 || { cat "$work/mpi_dp2_zero$zero.log"; exit 1; }
    compare "mpi_dp2_zero$zero"
  done
fi

# Pipelines: two stages of one layer each, every schedule that fits two layers.
for schedule in gpipe 1f1b zb-h1; do
  run "pp2_$schedule" --pp=2 --micro_batch_size=1 --micro_batches=4 --schedule="$schedule"
  compare "pp2_$schedule"
done
# All three dimensions at once (8 ranks), with the export gathered over them.
run tp2_pp2_dp2 --tp=2 --pp=2 --dp=2 --micro_batch_size=1 --micro_batches=2 \
  --export_safetensors="$work/model_3d.safetensors"
compare tp2_pp2_dp2
# ZeRO 3 with ZeRO-Offload in 3D; the export gathers the sharded values.
run tp2_pp2_dp2_zero3_offload --tp=2 --pp=2 --dp=2 --micro_batch_size=1 --micro_batches=2 \
  --zero_stage=3 --cpu_offload --export_safetensors="$work/model_3d_zero3.safetensors"
compare tp2_pp2_dp2_zero3_offload
cmp "$work/model_3d.safetensors" "$work/model_3d_zero3.safetensors" >/dev/null 2>&1 ||
  /usr/bin/python3 - "$work/model_3d.safetensors" "$work/model_3d_zero3.safetensors" <<'PY'
import json, struct, sys
def tensors(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    h = json.loads(blob[8:8 + n]); h.pop("__metadata__", None)
    data = blob[8 + n:]
    return {k: struct.unpack("<%df" % ((v["data_offsets"][1] - v["data_offsets"][0]) // 4),
                             data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in h.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys(), set(a) ^ set(b)
# Per tensor ||a - b|| / ||a|| (element-wise ratios would count the key
# bias, whose gradient is rounding noise that AdamW amplifies: a gathering
# error would be of the order of the values).
for k in a:
    diff = sum((x - y) ** 2 for x, y in zip(a[k], b[k])) ** 0.5
    norm = sum(x * x for x in a[k]) ** 0.5
    assert diff <= 1e-4 * norm, (k, diff, norm)
print("export tp2_pp2_dp2 zero3 + offload: the same %d tensors" % len(a))
PY
/usr/bin/python3 - "$work/model.safetensors" "$work/model_3d.safetensors" <<'PY'
import json, struct, sys
def header(path):
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    h = json.loads(blob[8:8 + n]); h.pop("__metadata__")
    return {k: v["shape"] for k, v in h.items()}
serial, layout_3d = header(sys.argv[1]), header(sys.argv[2])
assert serial == layout_3d, set(serial.items()) ^ set(layout_3d.items())
print("export tp2_pp2_dp2: the serial model's %d tensors" % len(serial))
PY
if command -v mpirun >/dev/null 2>&1; then
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
    "$train" --config="$work/config.textproto" --metrics_out="$work/mpi_pp2.jsonl" \
    --save= --backend=mpi --pp=2 --micro_batch_size=2 --micro_batches=2 \
    > "$work/mpi_pp2.log" 2>&1 || { cat "$work/mpi_pp2.log"; exit 1; }
  compare mpi_pp2
  # The flagship's MPI subset: 8 processes, all three dimensions, with ZeRO 1
  # and then ZeRO 3 with selective recomputation.
  for extra in "--zero_stage=1" "--zero_stage=3 --recompute=selective"; do
    name="mpi_tp2_pp2_dp2_$(echo "$extra" | tr -dc 'a-z0-9')"
    # shellcheck disable=SC2086
    mpirun --allow-run-as-root --oversubscribe --bind-to none -np 8 \
      "$train" --config="$work/config.textproto" --metrics_out="$work/$name.jsonl" \
      --save= --tp=2 --pp=2 --dp=2 --micro_batch_size=2 --micro_batches=1 $extra \
      > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; exit 1; }
    compare "$name"
  done
fi

# Unsupported or wrong values fail with the field named, and write nothing.
if "$train" --config="$work/config.textproto" --save= --pp=3 > "$work/pp3.log" 2>&1; then
  echo "FAIL: --pp=3 should be refused"; exit 1
fi
grep -q "pipeline_parallel=3 x virtual_pipeline_stages=1 = 3 stage chunks exceed num_layers=2" \
  "$work/pp3.log" || { cat "$work/pp3.log"; exit 1; }
if "$train" --config="$work/config.textproto" --save= --virtual_stages=2 \
  > "$work/v2.log" 2>&1; then
  echo "FAIL: --virtual_stages=2 with 1f1b should be refused"; exit 1
fi
grep -q "virtual_pipeline_stages=2 needs schedule" "$work/v2.log" || { cat "$work/v2.log"; exit 1; }
if "$train" --config="$work/config.textproto" --save= --pp=2 --schedule=interleaved \
  --micro_batches=3 --micro_batch_size=1 > "$work/interleaved.log" 2>&1; then
  echo "FAIL: interleaved with 3 micro-batches on 2 stages should be refused"; exit 1
fi
grep -q "num_micro_batches=3 must be a multiple of pipeline_parallel=2" "$work/interleaved.log" ||
  { cat "$work/interleaved.log"; exit 1; }
if "$train" --config="$work/config.textproto" --save= --tp=3 > "$work/tp3.log" 2>&1; then
  echo "FAIL: --tp=3 should be refused"; exit 1
fi
grep -q "tensor_parallel=3" "$work/tp3.log" || { cat "$work/tp3.log"; exit 1; }
# Gradient compression: refused by name under ZeRO and for unknown modes.
if "$train" --config="$work/config.textproto" --save= --dp=2 --zero_stage=1 \
  --gradient_compression=topk > "$work/topk_zero.log" 2>&1; then
  echo "FAIL: --gradient_compression=topk with --zero_stage=1 should be refused"; exit 1
fi
grep -q "gradient_compression=topk needs zero_stage=0, got zero_stage=1" "$work/topk_zero.log" ||
  { cat "$work/topk_zero.log"; exit 1; }
if "$train" --config="$work/config.textproto" --save= --gradient_compression=fp8 \
  > "$work/fp8.log" 2>&1; then
  echo "FAIL: --gradient_compression=fp8 should be refused"; exit 1
fi
grep -q 'unknown gradient compression "fp8"' "$work/fp8.log" || { cat "$work/fp8.log"; exit 1; }
echo "PASS"
