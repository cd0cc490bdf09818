#!/bin/bash
# //tools:plan as scripts use it: --json keys, --explain terms, refusals.
set -euo pipefail
PLAN="$1"
HW=configs/hardware/a100_80gb.textproto
CFG=configs/plan_validation/gpt_1008b.textproto
fail() { echo "FAIL: $*" >&2; exit 1; }

json=$("$PLAN" --config="$CFG" --hardware="$HW" --precision=bf16 --json)
for key in step_time_s tokens_per_s mfu memory_bytes_per_rank parameters gradients \
           optimizer_state activations communication_buffers total comm_bytes_per_step bubble_fraction; do
  grep -q "\"$key\": " <<<"$json" || fail "--json lacks $key: $json"
done
[[ $(grep -o '{' <<<"$json" | wc -l) -eq 2 ]] || fail "--json is not one object: $json"
# It parses as JSON, when a Python is at hand.
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys,math; d=json.loads(sys.argv[1]); assert math.isfinite(d["step_time_s"]) and d["step_time_s"] > 0 and 0 < d["mfu"] < 1, d' "$json" \
    || fail "--json does not parse or is not finite: $json"
fi

explain=$("$PLAN" --config="$CFG" --hardware="$HW" --precision=bf16 --explain)
for term in layer_gemm_forward_s layer_tp_comm_per_pass_s pipeline_makespan_s dp_exposed_s \
            memory_optimizer_state step_time_s mfu; do
  grep -q "^$term " <<<"$explain" || fail "--explain lacks $term"
done
grep -q "ReplaySchedule" <<<"$explain" || fail "--explain does not say the bubble is replayed"

# Layout flags override the config; an invalid layout is refused by name.
if out=$("$PLAN" --config="$CFG" --hardware="$HW" --tp=3 2>&1); then
  fail "tp=3 accepted: $out"
fi
grep -q "tensor_parallel" <<<"$out" || fail "refusal does not name the field: $out"
if out=$("$PLAN" --config="$CFG" --hardware="$HW" --precision=fp8 2>&1); then
  fail "fp8 accepted"
fi
if out=$("$PLAN" --config="$CFG" 2>&1); then fail "no --hardware accepted"; fi
echo PASS
