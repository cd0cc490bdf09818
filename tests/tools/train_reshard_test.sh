#!/bin/bash
# Checkpoints that move between layouts (issue 14): a run saves at step 3 under
# one layout, and //tools:train --resume=... under another layout continues
# it; every step after the switch must have the loss the uninterrupted run
# under the first layout has (relative 1e-5, fp32). Then damaged or
# mismatched checkpoints are refused, naming the file and the field, before
# anything is written.
set -euo pipefail

train="$(realpath "$1")"
prepare_data="$(realpath "$2")"
convert="$(realpath "$3")"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_reshard"
rm -rf "$work" && mkdir -p "$work"
export HOME="$work/home"
fail() { echo "FAIL: $*"; exit 1; }

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 300 2
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

# 8 heads, 8 layers, hidden 64: every factorisation of 8 ranks is valid.
# The global batch is 8 sequences; each layout sets micro_batches = 8 / dp.
write_config() {  # FILE [extra layout lines]
  cat > "$1" <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: 8 num_heads: 8 hidden_size: 64 }
layout { micro_batch_size: 1 num_micro_batches: 8 $2 }
optimizer { learning_rate: 3e-3 min_learning_rate: 3e-4 warmup_steps: 2 }
data { train_path: "$work/data/train.bin" val_path: "$work/data/val.bin" seq_length: 32 }
steps: 6
eval_interval: 0
CONFIG
}
write_config "$work/config.textproto" ""
write_config "$work/split35.textproto" "layers_per_stage: 3 layers_per_stage: 5"

# compare WHOLE RESUMED: the resumed run's steps (4..6) against the whole run's.
compare() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path)) if "loss" in r}
whole, resumed = losses(sys.argv[1]), losses(sys.argv[2])
assert len(whole) == 6, whole
assert sorted(resumed) == sorted(s for s in whole if s > 3), (sorted(whole), sorted(resumed))
worst = max(abs(resumed[s] - whole[s]) / abs(whole[s]) for s in resumed)
assert worst <= 1e-5, f"relative loss difference {worst:.3g} > 1e-5: {whole} vs {resumed}"
print(f"{worst:.3g}")
PY
}

# pair NAME "SOURCE FLAGS" "TARGET FLAGS" [source config] [target config]
pair() {
  local name="$1" source_flags="$2" target_flags="$3"
  local source_config="${4:-$work/config.textproto}" target_config="${5:-$work/config.textproto}"
  # shellcheck disable=SC2086
  "$train" --config="$source_config" $source_flags --save="$work/$name.ckpt" --save_interval=3 \
    --keep_last=5 --metrics_out="$work/$name.whole.jsonl" > "$work/$name.whole.log" 2>&1 ||
    { cat "$work/$name.whole.log"; fail "$name: the uninterrupted run"; }
  # shellcheck disable=SC2086
  "$train" --config="$target_config" $target_flags --resume="$work/$name.ckpt/step_00000003" \
    --save= --metrics_out="$work/$name.resumed.jsonl" > "$work/$name.resumed.log" 2>&1 ||
    { cat "$work/$name.resumed.log"; fail "$name: the resumed run"; }
  grep -q "resharding checkpoint .* from " "$work/$name.resumed.log" ||
    { cat "$work/$name.resumed.log"; fail "$name: no resharding line"; }
  local worst
  worst="$(compare "$work/$name.whole.jsonl" "$work/$name.resumed.jsonl")" ||
    { echo "$worst"; fail "$name: losses differ"; }
  echo "$name: $(grep -o 'from .*' "$work/$name.resumed.log" | head -1); worst relative loss difference $worst"
}

pair 2x2x2_to_1x4x2 "--tp=2 --pp=2 --dp=2 --micro_batches=4" "--tp=1 --pp=4 --dp=2 --micro_batches=4"
pair 4x1x2_to_1x1x8 "--tp=4 --pp=1 --dp=2 --micro_batches=4" "--tp=1 --pp=1 --dp=8 --micro_batches=1"
pair 1x8x1_zero1_to_2x2x2_zero3 "--tp=1 --pp=8 --dp=1 --micro_batches=8 --zero_stage=1" \
  "--tp=2 --pp=2 --dp=2 --micro_batches=4 --zero_stage=3"
pair 2x2x2_zero1_to_1x2x4_zero2 "--tp=2 --pp=2 --dp=2 --micro_batches=4 --zero_stage=1" \
  "--tp=1 --pp=2 --dp=4 --micro_batches=2 --zero_stage=2"
pair 1x1x1_to_2x2x2_interleaved "--tp=1 --pp=1 --dp=1 --micro_batches=8" \
  "--tp=2 --pp=2 --dp=2 --micro_batches=4 --schedule=interleaved --virtual_stages=2"
pair split44_to_split35 "--tp=1 --pp=2 --dp=1 --micro_batches=8" "--tp=1 --pp=2 --dp=1 --micro_batches=8" \
  "$work/config.textproto" "$work/split35.textproto"
# The vocabulary is padded to a multiple of 128 x tp: 256 rows at tp 1 and 2,
# 512 at tp 4. Above, the padding rows are dropped; here they load as zeros.
pair 1x1x8_to_4x1x2 "--tp=1 --pp=1 --dp=8 --micro_batches=1" "--tp=4 --pp=1 --dp=2 --micro_batches=4"
pair 2x2x2_zero3_to_1x1x1 "--tp=2 --pp=2 --dp=2 --micro_batches=4 --zero_stage=3" \
  "--tp=1 --pp=1 --dp=1 --micro_batches=8"

# Refusals: each run fails, names the file and the field, and writes nothing.
good="$work/2x2x2_to_1x4x2.ckpt/step_00000003"
damaged() {  # NAME: a fresh copy of the good checkpoint to damage
  rm -rf "$work/$1" && cp -r "$good" "$work/$1" && echo "$work/$1"
}
# edit_meta CKPT PYTHON: rewrites CKPT/meta.textproto with the expression
# PYTHON over its text `t`.
edit_meta() {
  /usr/bin/python3 - "$1/meta.textproto" "$2" <<'PY'
import re, sys
path, expression = sys.argv[1], sys.argv[2]
t = open(path).read()
new = eval(expression)
assert new != t, "the edit changed nothing"
open(path, "w").write(new)
PY
}
refused() {  # NAME CHECKPOINT "FLAGS" PATTERN...
  local name="$1" ckpt="$2" flags="$3"
  shift 3
  # shellcheck disable=SC2086
  if "$train" --config="$work/config.textproto" --tp=1 --pp=4 --dp=2 --micro_batches=4 $flags \
    --resume="$ckpt" --save="$work/$name.out" --metrics_out="$work/$name.jsonl" \
    > "$work/$name.log" 2>&1; then
    cat "$work/$name.log"; fail "$name should be refused"
  fi
  local pattern
  for pattern in "$@"; do
    grep -qF -- "$pattern" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: no '$pattern'"; }
  done
  [[ ! -e "$work/$name.out" ]] || fail "$name wrote $work/$name.out"
  [[ ! -s "$work/$name.jsonl" ]] || { cat "$work/$name.jsonl"; fail "$name wrote step metrics"; }
  echo "refused $name: $(grep -F -- "$1" "$work/$name.log" | head -1)"
}

sed -e 's/hidden_size: 64/hidden_size: 32/' "$work/config.textproto" > "$work/hidden32.textproto"
refused model_shape "$good" "--config=$work/hidden32.textproto" \
  "model.hidden_size: checkpoint 64, this job 32"
sed -e 's/seq_length: 32/seq_length: 16/' "$work/config.textproto" > "$work/seq16.textproto"
refused seq_length "$good" "--config=$work/seq16.textproto" "seq_length: checkpoint 32, this job 16"
refused global_batch "$good" "--micro_batches=2" "global batch" "checkpoint 8, this job 4"

ckpt="$(damaged newer_version)"
edit_meta "$ckpt" 't.replace("format_version: 3", "format_version: 4")'
refused newer_version "$ckpt" "" "$ckpt/meta.textproto" "format_version 4 is newer than this program"

# A missing window: rank 1's shard of wte.weight's first moment is dropped.
ckpt="$(damaged missing_window)"
edit_meta "$ckpt" 're.sub(r"  adam_m \{\n    file: \"rank_00001.tensors\"\n    tensor: \"adam_m/wte.weight\"\n[^}]*\}\n", "", t, count=1)'
refused missing_window "$ckpt" "" "$ckpt/meta.textproto" "('wte.weight').adam_m" "missing window"

# The manifest's global shape disagrees with the model.
ckpt="$(damaged manifest_shape)"
edit_meta "$ckpt" 't.replace("global_shape: 256\n  global_shape: 64", "global_shape: 128\n  global_shape: 64", 1)'
refused manifest_shape "$ckpt" "" "$ckpt/meta.textproto" "('wte.weight').global_shape is [128, 64]"

# A rank file's recorded CRC-32C differs from the file's.
ckpt="$(damaged file_crc)"
edit_meta "$ckpt" 're.sub(r"(name: \"rank_00000.tensors\"\n  size: \d+\n  crc32c: )\d+", r"\g<1>12345", t)'
refused file_crc "$ckpt" "" "$ckpt/meta.textproto" "rank_00000.tensors" "files[0].size 1" ".crc32c 12345"
# A window's recorded CRC-32C differs from its tensor's.
ckpt="$(damaged window_crc)"
edit_meta "$ckpt" 're.sub(r"(tensor: \"param/wte.weight\"[^}]*crc32c: )\d+", r"\g<1>12345", t, count=1)'
refused window_crc "$ckpt" "" "$ckpt/meta.textproto" "tensor 'param/wte.weight'" \
  "parameters[0] ('wte.weight').param[0].crc32c 12345"

# A rank file's bytes are damaged (the meta still records the old CRC-32C).
ckpt="$(damaged payload)"
size=$(stat -c %s "$ckpt/rank_00002.tensors")
/usr/bin/python3 - "$ckpt/rank_00002.tensors" $((size / 2)) <<'PY'
import sys
path, offset = sys.argv[1], int(sys.argv[2])
data = bytearray(open(path, "rb").read())
data[offset] ^= 0x01
open(path, "wb").write(data)
PY
refused payload "$ckpt" "" "$ckpt/rank_00002.tensors" "is corrupted"

# A version 2 checkpoint (no manifest) still resumes under its own layout.
ckpt="$(damaged version2)"
edit_meta "$ckpt" 're.sub(r"parameters \{.*?\n\}\n", "", t.replace("format_version: 3", "format_version: 2"), flags=re.S).replace("optimizer_step: 3\n", "")'
! grep -q "parameters {" "$ckpt/meta.textproto" || fail "version 2: the manifest is still there"
"$train" --config="$work/config.textproto" --tp=2 --pp=2 --dp=2 --micro_batches=4 --resume="$ckpt" \
  --save= --metrics_out="$work/version2.jsonl" > "$work/version2.log" 2>&1 ||
  { cat "$work/version2.log"; fail "version 2 under its own layout"; }
compare "$work/2x2x2_to_1x4x2.whole.jsonl" "$work/version2.jsonl" > /dev/null || fail "version 2 losses"
refused version2_other_layout "$ckpt" "" "layout.tensor_parallel: checkpoint 2, this job 1"
echo "version 2: resumed under its own layout, refused under another"

# //tools:convert_checkpoint --to_safetensors: the same tensors as the
# trainer's own export of the same model (tp 4 pads the vocabulary to 512 rows,
# ZeRO 1 splits the moments), and a Hugging Face GPT-2 config.json next to it.
"$train" --config="$work/config.textproto" --tp=4 --pp=1 --dp=2 --micro_batches=4 --zero_stage=1 \
  --save="$work/export.ckpt" --export_safetensors="$work/exported/model.safetensors" \
  --metrics_out= > "$work/export.log" 2>&1 || { cat "$work/export.log"; fail "export run"; }
"$convert" --input="$work/export.ckpt/step_00000006" --to_safetensors="$work/converted/model.safetensors" \
  > "$work/convert.log" 2>&1 || { cat "$work/convert.log"; fail "convert"; }
/usr/bin/python3 - "$work/exported/model.safetensors" "$work/converted/model.safetensors" \
  "$work/converted/config.json" <<'PY'
import json, struct, sys
def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    return meta, {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]])
                  for k, v in header.items()}
meta_a, a = read(sys.argv[1])
meta_b, b = read(sys.argv[2])
assert meta_a == meta_b, (meta_a, meta_b)
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
for name in a:
    assert a[name] == b[name], f"{name} differs"
assert a["wte.weight"][1] == [256, 64], a["wte.weight"][1]
config = json.load(open(sys.argv[3]))
assert config["model_type"] == "gpt2" and config["n_layer"] == 8 and config["n_head"] == 8, config
assert config["n_embd"] == 64 and config["vocab_size"] == 256 and config["n_positions"] == 32, config
print(f"{len(a)} tensors bitwise equal to the trainer's export; config.json: {config}")
PY
# The trainer's --export_safetensors writes the same config.json next to its
# file (one code path: training::WriteGpt2Export).
cmp "$work/exported/config.json" "$work/converted/config.json" ||
  fail "the trainer's config.json differs from convert_checkpoint's"
if "$convert" --input="$work/export.ckpt/step_00000006" \
  --to_safetensors="$work/converted/model.safetensors" > "$work/convert2.log" 2>&1; then
  fail "convert replaced an existing file"
fi
grep -qF "exists; refusing to replace it" "$work/convert2.log" || { cat "$work/convert2.log"; fail "no refusal"; }
ckpt="$(damaged convert_missing)"
edit_meta "$ckpt" 're.sub(r"  param \{\n    file: \"rank_00001.tensors\"\n    tensor: \"param/wte.weight\"\n[^}]*\}\n", "", t, count=1)'
if "$convert" --input="$ckpt" --to_safetensors="$work/convert_missing/out.safetensors" \
  > "$work/convert_missing.log" 2>&1; then fail "convert accepted a missing window"; fi
grep -qF "missing window" "$work/convert_missing.log" || { cat "$work/convert_missing.log"; fail "convert: no missing window"; }
[[ ! -e "$work/convert_missing/out.safetensors" && ! -e "$work/convert_missing/config.json" ]] ||
  fail "convert wrote output for a refused input"
echo "convert_checkpoint: equal to the export; refuses to replace a file and a missing window"

# //tools:convert_checkpoint --output: 2x2x2 -> 1x4x2 offline. The resumed run
# under 1x4x2 has bitwise the losses of the online resharded resume of the
# original (the same windows, written once more), and so the uninterrupted
# run's (relative 1e-5).
"$convert" --input="$good" --output="$work/offline_1x4x2" --tp=1 --pp=4 --dp=2 --micro_batches=4 \
  > "$work/offline.log" 2>&1 || { cat "$work/offline.log"; fail "offline conversion"; }
/usr/bin/python3 - "$work/offline_1x4x2/meta.textproto" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
assert "tensor_parallel: 1" in t and "pipeline_parallel: 4" in t and "data_parallel: 2" in t, t[:2000]
files = re.findall(r'name: "(rank_\d+\.tensors)"', t)
assert files == [f"rank_{r:05d}.tensors" for r in range(8)], files
assert re.search(r"^step: 3$", t, re.M) and "format_version: 3" in t, t[:600]
PY
[[ "$(ls "$work/offline_1x4x2" | grep -c '^rank_.*\.tensors$')" == 8 ]] || fail "offline: not 8 rank files"
"$train" --config="$work/config.textproto" --tp=1 --pp=4 --dp=2 --micro_batches=4 \
  --resume="$work/offline_1x4x2" --save= --metrics_out="$work/offline.resumed.jsonl" \
  > "$work/offline.resumed.log" 2>&1 || { cat "$work/offline.resumed.log"; fail "resume the converted checkpoint"; }
if grep -q "resharding checkpoint" "$work/offline.resumed.log"; then
  cat "$work/offline.resumed.log"; fail "the converted checkpoint was resharded again: not saved under 1x4x2"
fi
/usr/bin/python3 - "$work/2x2x2_to_1x4x2.resumed.jsonl" "$work/offline.resumed.jsonl" <<'PY'
import json, sys
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path)) if "loss" in r}
online, offline = losses(sys.argv[1]), losses(sys.argv[2])
assert len(online) == 3 and online == offline, (online, offline)
PY
compare "$work/2x2x2_to_1x4x2.whole.jsonl" "$work/offline.resumed.jsonl" > /dev/null ||
  fail "offline: losses differ from the uninterrupted run"
# An existing --output is refused without --overwrite, replaced with it.
if "$convert" --input="$good" --output="$work/offline_1x4x2" --tp=1 --pp=4 --dp=2 --micro_batches=4 \
  > "$work/offline2.log" 2>&1; then fail "convert replaced an existing checkpoint"; fi
grep -qF "offline_1x4x2 exists; refusing to replace it (--overwrite)" "$work/offline2.log" ||
  { cat "$work/offline2.log"; fail "no refusal of an existing --output"; }
"$convert" --input="$good" --output="$work/offline_1x4x2" --tp=1 --pp=4 --dp=2 --micro_batches=4 \
  --overwrite > "$work/offline3.log" 2>&1 || { cat "$work/offline3.log"; fail "--overwrite"; }
if "$convert" --input="$good" --output="$work/offline_seed" --tp=1 --pp=4 --dp=2 --micro_batches=4 \
  --seed=7 > "$work/offline_seed.log" 2>&1; then fail "offline: accepted --seed"; fi
grep -qF -- "--config and --seed do not apply" "$work/offline_seed.log" ||
  { cat "$work/offline_seed.log"; fail "offline: no refusal of --seed"; }
[[ ! -e "$work/offline_seed" ]] || fail "offline: wrote output with --seed"
# A damaged input (a missing window) is refused, naming the field, and
# nothing is written.
if "$convert" --input="$work/missing_window" --output="$work/offline_missing" --tp=1 --pp=4 --dp=2 \
  --micro_batches=4 > "$work/offline_missing.log" 2>&1; then fail "offline: accepted a missing window"; fi
grep -qF "('wte.weight').adam_m" "$work/offline_missing.log" && grep -qF "missing window" "$work/offline_missing.log" ||
  { cat "$work/offline_missing.log"; fail "offline: no missing window"; }
[[ ! -e "$work/offline_missing" && ! -e "$work/offline_missing.partial" ]] || fail "offline: wrote output for a refused input"
echo "convert_checkpoint --output: 2x2x2 -> 1x4x2 offline resumes bitwise as the online reshard"

# //tools:convert_checkpoint --from_hf: the trainer's export (a Hugging Face
# GPT-2 directory) into a 2x2x1 checkpoint with fresh optimizer state. Its
# re-export is bitwise the original, and a run resumed from it starts from the
# trained weights (its first loss is far below a fresh model's).
hf_layout=(--config="$work/config.textproto" --tp=2 --pp=2 --dp=1 --micro_batches=8)
"$convert" --from_hf="$work/exported" --output="$work/hf_2x2x1" "${hf_layout[@]}" \
  > "$work/from_hf.log" 2>&1 || { cat "$work/from_hf.log"; fail "--from_hf"; }
/usr/bin/python3 - "$work/hf_2x2x1/meta.textproto" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
assert "tensor_parallel: 2" in t and "pipeline_parallel: 2" in t, t[:2000]
assert re.search(r"^step: 0$", t, re.M) and re.search(r"^optimizer_step: 0$", t, re.M), t[:600]
assert re.findall(r'name: "(rank_\d+\.tensors)"', t) == [f"rank_{r:05d}.tensors" for r in range(4)]
PY
"$convert" --input="$work/hf_2x2x1" --to_safetensors="$work/hf_back/model.safetensors" \
  > "$work/hf_back.log" 2>&1 || { cat "$work/hf_back.log"; fail "re-export of the --from_hf checkpoint"; }
cmp "$work/exported/config.json" "$work/hf_back/config.json" || fail "--from_hf: config.json differs"
/usr/bin/python3 - "$work/exported/model.safetensors" "$work/hf_back/model.safetensors" <<'PY'
import json, struct, sys
def read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    body = data[8 + n:]
    return {k: (v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]])
            for k, v in header.items()}
a, b = read(sys.argv[1]), read(sys.argv[2])
assert sorted(a) == sorted(b) and len(a) == 100, (sorted(a), sorted(b))
for name in a:
    assert a[name] == b[name], f"{name} differs"
PY
"$train" "${hf_layout[@]}" --resume="$work/hf_2x2x1" --save= --metrics_out="$work/hf.resumed.jsonl" \
  > "$work/hf.resumed.log" 2>&1 || { cat "$work/hf.resumed.log"; fail "resume from the --from_hf checkpoint"; }
"$train" "${hf_layout[@]}" --save= --metrics_out="$work/hf.fresh.jsonl" > "$work/hf.fresh.log" 2>&1 ||
  { cat "$work/hf.fresh.log"; fail "fresh 2x2x1 run"; }
/usr/bin/python3 - "$work/hf.resumed.jsonl" "$work/hf.fresh.jsonl" <<'PY'
import json, sys
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path)) if "loss" in r}
tuned, fresh = losses(sys.argv[1]), losses(sys.argv[2])
assert sorted(tuned) == list(range(1, 7)), tuned
assert tuned[1] < fresh[1] - 0.3, f"first loss {tuned[1]} is not below the fresh model's {fresh[1]}"
print(f"first loss from the imported weights {tuned[1]:.4f}, fresh {fresh[1]:.4f}")
PY

# Damaged or mismatched Hugging Face directories are refused, naming the file
# and the field or tensor, before anything is written.
hf_damaged() {  # NAME PYTHON-EDIT: a copy of the export, edited
  rm -rf "$work/$1" && cp -r "$work/exported" "$work/$1"
  /usr/bin/python3 - "$work/$1" "$2" <<'PY'
import json, struct, sys
d, edit = sys.argv[1], sys.argv[2]
data = open(d + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
meta = header.pop("__metadata__", None)
body = data[8 + n:]
tensors = {k: [v["dtype"], v["shape"], body[v["data_offsets"][0]:v["data_offsets"][1]]] for k, v in header.items()}
config = json.load(open(d + "/config.json"))
exec(edit)
out, offset, chunks = {}, 0, []
for k, (dtype, shape, raw) in tensors.items():
    out[k] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
    offset += len(raw)
    chunks.append(raw)
if meta is not None: out["__metadata__"] = meta
h = json.dumps(out).encode()
open(d + "/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(chunks))
json.dump(config, open(d + "/config.json", "w"))
PY
}
hf_refused() {  # NAME PATTERN...
  local name="$1"
  shift
  if "$convert" --from_hf="$work/$name" --output="$work/$name.out" "${hf_layout[@]}" \
    > "$work/$name.log" 2>&1; then fail "--from_hf $name should be refused"; fi
  local pattern
  for pattern in "$@"; do
    grep -qF -- "$pattern" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: no '$pattern'"; }
  done
  [[ ! -e "$work/$name.out" ]] || fail "$name wrote $work/$name.out"
  echo "refused $name: $(grep convert_checkpoint: "$work/$name.log" | head -1)"
}
hf_damaged hf_missing 'del tensors["h.3.mlp.c_fc.bias"]'
hf_refused hf_missing "hf_missing/model.safetensors: tensor 'h.3.mlp.c_fc.bias' is missing"
hf_damaged hf_shape 'tensors["wpe.weight"] = ["F32", [16, 64], tensors["wpe.weight"][2][:16 * 64 * 4]]'
hf_refused hf_shape "hf_shape/model.safetensors: tensor 'wpe.weight' has shape [16, 64]" "gives [32, 64]"
hf_damaged hf_config 'config["n_embd"] = 32; config["n_inner"] = 128'
hf_refused hf_config "hf_config/model.safetensors: tensor 'wte.weight' has shape [256, 64], config.json (n_layer 8, n_embd 32"
hf_damaged hf_field 'del config["n_head"]'
hf_refused hf_field "hf_field/config.json: field 'n_head' is missing"
hf_damaged hf_extra 'tensors["h.8.ln_1.weight"] = tensors["h.7.ln_1.weight"]'
hf_refused hf_extra "does not have: h.8.ln_1.weight"
if "$convert" --from_hf="$work/exported" --output="$work/hf_2x2x1" "${hf_layout[@]}" \
  > "$work/hf_exists.log" 2>&1; then fail "--from_hf replaced an existing checkpoint"; fi
grep -qF "hf_2x2x1 exists; refusing to replace it (--overwrite)" "$work/hf_exists.log" ||
  { cat "$work/hf_exists.log"; fail "--from_hf: no refusal of an existing --output"; }
echo "convert_checkpoint --from_hf: re-export bitwise equal; damaged directories refused"
