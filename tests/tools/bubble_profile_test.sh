#!/bin/bash
# //tools:bubble_profile from the command line: every schedule on a small
# model writes a Chrome trace that parses, SVG timelines and a CSV summary
# whose analytic column is the schedule's formula; bad layouts fail naming
# the rule and write nothing.
set -euo pipefail

profile="$1"
work="${TEST_TMPDIR:-$(mktemp -d)}/bubble_profile"
rm -rf "$work" && mkdir -p "$work"

cat > "$work/config.textproto" <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: 4 num_heads: 2 hidden_size: 32 }
layout { micro_batch_size: 2 num_micro_batches: 4 }
data { seq_length: 32 }
CONFIG

check() {  # check DIR P M V SCHEDULE: the outputs exist and are consistent
  /usr/bin/python3 - "$@" <<'PY'
import csv, json, sys
out, p, m, v, schedule = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
trace = json.load(open(out + "/trace.json"))
events = [e for e in trace["traceEvents"] if e.get("ph") == "X" and e.get("cat") in ("F", "B", "W")]
# Every micro-batch passes every chunk of every stage once F, B and W; measured and replayed.
assert len(events) == 2 * 3 * p * v * m, (len(events), p, m, v)
for name in ("timeline.svg", "timeline_wall.svg"):
    svg = open(out + "/" + name).read()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>"), name
rows = list(csv.DictReader(open(out + "/summary.csv")))
assert len(rows) == 2 * p + 2, rows
expected = {"gpipe": (p - 1) / (m + p - 1), "1f1b": (p - 1) / (m + p - 1),
            "interleaved": (p - 1) / (v * m + p - 1)}
for row in rows:
    fraction, analytic = float(row["bubble_fraction"]), float(row["analytic"])
    assert 0 <= fraction < 1, row
    if schedule in expected:
        assert abs(analytic - expected[schedule]) < 1e-6, (row, expected[schedule])
    else:  # zb-h1: its value depends on the measured F, B, W; below 1F1B's.
        assert 0 <= analytic < (p - 1) / (m + p - 1), row
print(f"{schedule} p={p} m={m} v={v}: {len(events)} trace events, {len(rows)} summary rows")
PY
}

for schedule in gpipe 1f1b zb-h1; do
  "$profile" --config="$work/config.textproto" --pp=2 --micro_batches=4 --schedule="$schedule" \
    --warmup_steps=1 --profile_steps=2 --out_dir="$work/$schedule" > "$work/$schedule.log" 2>&1 ||
    { cat "$work/$schedule.log"; exit 1; }
  grep -q "mean" "$work/$schedule.log" || { cat "$work/$schedule.log"; exit 1; }
  check "$work/$schedule" 2 4 1 "$schedule"
done
"$profile" --config="$work/config.textproto" --pp=2 --micro_batches=4 --schedule=interleaved \
  --virtual_stages=2 --warmup_steps=1 --profile_steps=2 --out_dir="$work/interleaved" \
  > "$work/interleaved.log" 2>&1 || { cat "$work/interleaved.log"; exit 1; }
check "$work/interleaved" 2 4 2 interleaved
# Tensor and data parallelism around the pipeline: stage 0 of replica 0 is stamped.
"$profile" --config="$work/config.textproto" --tp=2 --pp=2 --dp=2 --micro_batch_size=1 \
  --warmup_steps=1 --profile_steps=1 --out_dir="$work/3d" > "$work/3d.log" 2>&1 ||
  { cat "$work/3d.log"; exit 1; }
check "$work/3d" 2 4 1 1f1b

# Bad layouts name the rule and write nothing.
if "$profile" --config="$work/config.textproto" --pp=2 --schedule=gpipe --virtual_stages=2 \
  --out_dir="$work/bad" > "$work/bad.log" 2>&1; then
  echo "FAIL: virtual stages with GPipe should be refused"; exit 1
fi
grep -q "virtual_pipeline_stages=2 needs schedule" "$work/bad.log" || { cat "$work/bad.log"; exit 1; }
if "$profile" --config="$work/config.textproto" --pp=3 --out_dir="$work/bad" > "$work/bad.log" 2>&1; then
  echo "FAIL: 4 layers on 3 stages should be refused"; exit 1
fi
grep -q "must divide num_layers=4" "$work/bad.log" || { cat "$work/bad.log"; exit 1; }
[[ ! -e "$work/bad" ]] || { echo "FAIL: a refused run wrote $work/bad"; exit 1; }
# An --out_dir holding the config it reads is refused before anything runs.
if "$profile" --config="$work/config.textproto" --out_dir="$work" > "$work/alias.log" 2>&1; then
  echo "FAIL: --out_dir holding the config should be refused"; exit 1
fi
grep -q "lies inside the output directory --out_dir=" "$work/alias.log" || { cat "$work/alias.log"; exit 1; }
echo "PASS"
