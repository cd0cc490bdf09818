#!/bin/bash
# //tools:sweep as scripts use it: its flags, --predict at a large scale, the
# outputs, resuming, and refusals.
set -euo pipefail
SWEEP="$1"
HW=configs/hardware/a100_80gb.textproto
CFG=configs/plan_validation/gpt_18.4b.textproto
OUT="${TEST_TMPDIR:-/tmp}/sweep_cli"
rm -rf "$OUT"
fail() { echo "FAIL: $*" >&2; exit 1; }

# --predict ranks every layout of 256 A100s without running anything.
out=$("$SWEEP" --world_size=256 --global_batch_size=1024 --config="$CFG" --hardware="$HW" \
      --predict --memory_budget_gb=80 --zero_stages=0,1 --precision=bf16 --out_dir="$OUT")
for f in results.csv results.md chart.svg best_layout.textproto; do
  [[ -s "$OUT/$f" ]] || fail "--predict did not write $f: $out"
done
grep -q "^Best layout: tp" <<<"$out" || fail "no best layout: $out"
grep -q ",invalid,layout: " "$OUT/results.csv" || fail "invalid layouts are not listed with a message"
grep -q ",over_budget,predicted " "$OUT/results.csv" || fail "no layout is over the 80 GB budget"
grep -q -- "-z1-" "$OUT/results.csv" || fail "--zero_stages=0,1 did not sweep stage 1"
[[ -z $(ls -A "$OUT/runs") ]] || fail "--predict ran a layout"
rows=$(($(wc -l <"$OUT/results.csv") - 1))

# Started again: everything is skipped, the CSV keeps its rows.
again=$("$SWEEP" --world_size=256 --global_batch_size=1024 --config="$CFG" --hardware="$HW" \
        --predict --memory_budget_gb=80 --zero_stages=0,1 --precision=bf16 --out_dir="$OUT")
grep -q "0 evaluated now, $rows skipped" <<<"$again" || fail "not resumed ($rows rows): $again"

# Refusals name the flag.
if msg=$("$SWEEP" --global_batch_size=8 --predict --hardware="$HW" --out_dir="$OUT/x" 2>&1); then
  fail "no --world_size accepted: $msg"
fi
grep -q -- "--world_size" <<<"$msg" || fail "refusal does not name --world_size: $msg"
if msg=$("$SWEEP" --world_size=2 --global_batch_size=8 --predict --hardware="$HW" \
         --zero_stages=5 --out_dir="$OUT/x" 2>&1); then
  fail "--zero_stages=5 accepted"
fi
grep -q -- "--zero_stages" <<<"$msg" || fail "refusal does not name --zero_stages: $msg"
if msg=$("$SWEEP" --world_size=2 --global_batch_size=8 --predict --hardware="$HW" \
         --gradient_compressions=zip --out_dir="$OUT/x" 2>&1); then
  fail "--gradient_compressions=zip accepted"
fi
grep -q -- "--gradient_compressions" <<<"$msg" || fail "refusal does not name the flag: $msg"
if msg=$("$SWEEP" --world_size=2 --global_batch_size=8 --hardware="$HW" --backend=nccl \
         --out_dir="$OUT/x" 2>&1); then
  fail "--backend=nccl accepted"
fi
grep -q -- "--backend=nccl" <<<"$msg" || fail "refusal does not name --backend: $msg"

# Compression is planned when predicting.
"$SWEEP" --world_size=16 --global_batch_size=64 --config="$CFG" --hardware="$HW" --predict \
  --gradient_compressions=none,bf16 --precision=bf16 --out_dir="$OUT/c" > /dev/null
grep -q -- "-cbf16,.*,predicted," "$OUT/c/results.csv" || fail "bf16 compression not planned"
echo PASS
