#!/bin/bash
# //tools:train's inputs, as a user gets them wrong: every mistake is refused
# before step 1 with a message naming the file, the field or the flag and the
# rule, and no file the user wrote is changed. Data: a missing token file is
# never regenerated over the other one, nor is a mistyped directory filled;
# a directory as a token file, a val.bin with a larger vocabulary or too short
# for one batch. The config file: a device, a FIFO, a directory, over 1 MiB,
# unreadable, empty. Flags: negative --seed / --stop_at_step, interleaved
# without virtual stages, --eval_batches, --precision and the loss-scale flags. A token file truncated under a
# running job ends it with an error, not SIGBUS.
set -euo pipefail

train="$1"
prepare_data="$2"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_inputs"
rm -rf "$work" && mkdir -p "$work"

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 200 1
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

config() {  # config DIR [extra data fields]: a tiny job reading DIR/train.bin and DIR/val.bin
  cat <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: 2 num_heads: 4 hidden_size: 32 }
layout { micro_batch_size: 4 num_micro_batches: 1 }
data { train_path: "$1/train.bin" val_path: "$1/val.bin" seq_length: 32 $2 }
steps: 2
eval_interval: 1
eval_batches: 1
CONFIG
}
config "$work/data" "" > "$work/good.textproto"

# dataset NAME [FILE...]: a directory $work/NAME holding copies of the prepared
# FILEs, and $work/NAME.textproto, the tiny job reading it.
dataset() {
  local name="$1" file
  shift
  mkdir -p "$work/$name"
  for file in "$@"; do cp "$work/data/$file" "$work/$name/"; done
  config "$work/$name" "" > "$work/$name.textproto"
}

# expect_failure NAME STATUS MESSAGE [train flags...]: train exits with STATUS
# (1: the job failed, 2: a flag or the config file), prints MESSAGE, and never
# reaches step 1. Every run is bounded: nothing here may wait.
expect_failure() {
  local name="$1" status="$2" message="$3"
  shift 3
  local rc=0
  timeout 60 "$train" --metrics_out= --save= --peak_tflops=1 "$@" > "$work/$name.log" 2>&1 || rc=$?
  if [[ "$rc" != "$status" ]]; then
    cat "$work/$name.log"; echo "FAIL: $name exited $rc, expected $status"; exit 1
  fi
  grep -qF -- "$message" "$work/$name.log" ||
    { cat "$work/$name.log"; echo "FAIL: $name: no \"$message\""; exit 1; }
  if grep -q "^step " "$work/$name.log"; then
    cat "$work/$name.log"; echo "FAIL: $name trained before failing"; exit 1
  fi
  echo "ok: $name"
}

# A token file crafted by the documented layout (token_file.h), any vocabulary.
write_tokens() {  # write_tokens PATH VOCAB COUNT
  /usr/bin/python3 - "$@" <<'PY'
import struct, sys
path, vocab, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
width = 2 if vocab <= 65536 else 4
payload = b"".join(struct.pack("<H" if width == 2 else "<i", (i * 7) % vocab) for i in range(count))
header = b"TRDTOKEN" + struct.pack("<IIQQI", 1, width, vocab, count, crc32c(payload)) + bytes(24)
open(path, "wb").write(header + struct.pack("<I", crc32c(header)) + payload)
PY
}

# --- Data preparation destroys nothing.
# val.bin missing: an error naming it; train.bin untouched, even when the
# config names raw_text (preparing would overwrite train.bin).
dataset no_val train.bin
expect_failure missing_val 1 "data.val_path $work/no_val/val.bin does not exist" \
  --config="$work/no_val.textproto"
grep -qF "//tools:prepare_data" "$work/missing_val.log"
config "$work/no_val" "raw_text: \"$work/corpus.txt\"" > "$work/no_val_raw.textproto"
expect_failure missing_val_with_raw_text 1 "preparing from raw text would overwrite it" \
  --config="$work/no_val_raw.textproto"
cmp "$work/data/train.bin" "$work/no_val/train.bin" || { echo "FAIL: train.bin changed"; exit 1; }
[[ ! -e "$work/no_val/val.bin" ]] || { echo "FAIL: val.bin was regenerated"; exit 1; }

# A mistyped directory and no raw_text: refused, and the directory not created.
config "$work/dta" "" > "$work/typo.textproto"
expect_failure mistyped_dir 1 \
  "data.train_path $work/dta/train.bin and data.val_path $work/dta/val.bin do not exist" \
  --config="$work/typo.textproto"
[[ ! -e "$work/dta" ]] || { echo "FAIL: the mistyped directory was created"; exit 1; }

# raw_text named and both files absent: the one case the trainer prepares.
# --seed=0 is a seed like any other.
config "$work/fresh" "raw_text: \"$work/corpus.txt\"" > "$work/fresh.textproto"
timeout 120 "$train" --config="$work/fresh.textproto" --metrics_out= --save= --peak_tflops=1 \
  --seed=0 --eval_batches=2 > "$work/fresh.log" 2>&1 || { cat "$work/fresh.log"; exit 1; }
grep -q "preparing $work/fresh" "$work/fresh.log" && grep -q "val_loss" "$work/fresh.log" &&
  [[ -s "$work/fresh/train.bin" && -s "$work/fresh/val.bin" ]] ||
  { cat "$work/fresh.log"; echo "FAIL: no preparation"; exit 1; }
echo "ok: prepared from raw_text"

# A directory where train.bin should be.
dataset dir_as_file val.bin
mkdir "$work/dir_as_file/train.bin"
expect_failure train_bin_is_a_directory 1 "token file $work/dir_as_file/train.bin is a directory" \
  --config="$work/dir_as_file.textproto"

# --- val.bin checked before step 1: vocabulary and length.
dataset big_vocab train.bin
write_tokens "$work/big_vocab/val.bin" 300 2000
expect_failure val_vocabulary 1 \
  "data file $work/big_vocab/val.bin has vocabulary 300, larger than model.vocab_size=256" \
  --config="$work/big_vocab.textproto"
dataset short_val train.bin
write_tokens "$work/short_val/val.bin" 256 100
expect_failure val_too_short 1 \
  "has 100 tokens: 3 windows of seq_length+1=33 tokens, fewer than one global batch of 4 windows (needs at least 129 tokens" \
  --config="$work/short_val.textproto"

# --- The config file.
expect_failure config_dev_zero 2 "train config /dev/zero is not a regular file" --config=/dev/zero
mkfifo "$work/fifo.textproto"
expect_failure config_fifo 2 "is not a regular file" --config="$work/fifo.textproto"
expect_failure config_directory 2 "train config $work is a directory" --config="$work"
{ cat "$work/good.textproto"; head -c 1100000 /dev/zero | tr '\0' '#'; } > "$work/huge.textproto"
expect_failure config_too_large 2 "over the limit of 1048576 (1 MiB)" --config="$work/huge.textproto"
expect_failure config_unreadable 2 "cannot read train config /proc/self/mem" --config=/proc/self/mem
: > "$work/empty.textproto"
expect_failure config_empty 2 "train config $work/empty.textproto is empty: it sets no field" \
  --config="$work/empty.textproto"
printf '# only a comment\n\n' > "$work/comment.textproto"
expect_failure config_only_comments 2 "is empty" --config="$work/comment.textproto"

# --- Flags.
expect_failure negative_seed 2 "--seed=-1 must be >= 0 (0 is a valid seed)" \
  --config="$work/good.textproto" --seed=-1
expect_failure negative_stop_at_step 2 "--stop_at_step=-3 must be >= 0" \
  --config="$work/good.textproto" --stop_at_step=-3
expect_failure interleaved_without_virtual_stages 1 "add --virtual_stages=2 or more" \
  --config="$work/good.textproto" --pp=2 --micro_batches=2 --schedule=interleaved
expect_failure more_stages_than_layers 1 "= 4 stage chunks exceed num_layers=2" \
  --config="$work/good.textproto" --pp=4
# Mixed precision: a loss scale is fp16's alone, and its values are checked.
expect_failure unknown_precision 2 "--precision=fp8 is not one of fp32, bf16, fp16" \
  --config="$work/good.textproto" --precision=fp8
expect_failure loss_scale_with_bf16 2 \
  "--loss_scale=1024 applies to --precision=fp16 only, but the precision is bf16" \
  --config="$work/good.textproto" --precision=bf16 --loss_scale=1024
expect_failure loss_scale_with_fp32 2 "--hysteresis=3 applies to --precision=fp16 only" \
  --config="$work/good.textproto" --hysteresis=3
expect_failure negative_loss_scale 2 \
  "--loss_scale=-8 must be \"dynamic\" or a finite number > 0" \
  --config="$work/good.textproto" --precision=fp16 --loss_scale=-8
expect_failure loss_scale_window_zero 2 "--loss_scale_window=0 must be >= 1" \
  --config="$work/good.textproto" --precision=fp16 --loss_scale_window=0
{ cat "$work/good.textproto"; echo 'precision: BF16 loss_scale { window: 10 }'; } \
  > "$work/bf16_scale.textproto"
expect_failure config_loss_scale_with_bf16 1 "loss_scale is set but precision=bf16" \
  --config="$work/bf16_scale.textproto"
expect_failure ps_servers_zero 1 "ps_servers=0 must be >= 1 with dp_sync=ps" \
  --config="$work/good.textproto" --dp=2 --dp_sync=ps --ps_servers=0
expect_failure ps_staleness_without_ps 1 "ps_staleness=2 needs dp_sync=ps, got dp_sync=sync" \
  --config="$work/good.textproto" --dp=2 --ps_staleness=2
expect_failure ps_with_fp16 1 "precision=fp16 does not combine with layout.dp_sync=ps" \
  --config="$work/good.textproto" --dp=2 --dp_sync=ps --ps_servers=2 --precision=fp16
grep -q "layers_per_stage" "$work/more_stages_than_layers.log" &&
  { echo "FAIL: hinted at a split that does not exist"; exit 1; }
expect_failure eval_batches_zero 1 "eval_batches" --config="$work/good.textproto" --eval_batches=0

# --- A token file truncated under a running job: an error naming it, no SIGBUS.
dataset shrinking train.bin val.bin
timeout 120 "$train" --config="$work/shrinking.textproto" --metrics_out= --save= --peak_tflops=1 \
  --steps=100000 --eval_interval=0 > "$work/shrinking.log" 2>&1 &
job=$!
for _ in $(seq 1 600); do
  grep -q "^step " "$work/shrinking.log" && break
  sleep 0.1
done
truncate -s 100 "$work/shrinking/train.bin"
rc=0
wait "$job" || rc=$?
if [[ "$rc" != 1 ]] || ! grep -q "token file $work/shrinking/train.bin: .*truncated after it was opened" \
    "$work/shrinking.log"; then
  tail -5 "$work/shrinking.log"; echo "FAIL: truncation under the job exited $rc"; exit 1
fi
echo "ok: truncated under a running job"

echo "PASS"
