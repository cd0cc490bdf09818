#!/bin/bash
# The parameter server as a training job (issue 12, --dp_sync=ps): 2 workers
# (dp 2) and 1 server rank.
#   - On the local backend, ps with staleness 0 gives sync's losses bit for
#     bit (clipping on: the default grad_clip), and each worker's
#     dp_bytes_sent is 4 (P + 1) (its gradient and a header to the server)
#     + 8 (the loss all-gather over 2 workers).
#   - Under `mpirun -np 3` (workers + server processes) ps with staleness 0
#     gives the local backend's losses (relative 1e-5; measured difference
#     printed). With staleness 1 which version a worker reads depends on
#     timing, so runs differ by design: it must run, stay finite and lower
#     the loss.
#   - Checkpoints hold the servers' state: a ps run saved at step 3 and
#     resumed (ps on local and MPI, or sync) gives steps 4-6 bit for bit.
#   - A stop signal under ps saves as in every layout: exit 143 (SIGTERM,
#     local) or 138 (SIGUSR1, mpirun), a checkpoint of the servers' state
#     and a resume hint; with staleness 0 stopping and resuming gives the
#     uninterrupted run's 400 losses bit for bit (local and MPI), with
#     staleness 2 (the stop agreed 2 steps later) every step is reported
#     once and the resumed run learns.
#   - Refused by name, each as a process that exits non-zero: the wrong
#     process count (`-np 2`, naming workers + ps_servers and -np 3) and
#     --precision=fp16.
# Every run is bounded by `timeout`.
set -euo pipefail

train="$(realpath "$1")"
prepare_data="$(realpath "$2")"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_ps_mpi"
rm -rf "$work" && mkdir -p "$work"
export HOME="$work/home"
fail() { echo "FAIL: $*"; exit 1; }
command -v mpirun >/dev/null 2>&1 || fail "this test needs mpirun (Open MPI) on PATH"
mpi=(timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none)

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 300 2
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

cat > "$work/config.textproto" <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: 2 num_heads: 4 hidden_size: 64 }
layout { data_parallel: 2 micro_batch_size: 1 num_micro_batches: 2 }
optimizer { learning_rate: 3e-3 min_learning_rate: 3e-4 warmup_steps: 2 grad_clip: 0.5 }
data { train_path: "$work/data/train.bin" val_path: "$work/data/val.bin" seq_length: 32 }
steps: 6
eval_interval: 0
CONFIG
run() {  # NAME BACKEND_PREFIX... -- FLAGS...
  local name="$1"; shift
  local -a prefix=()
  while [[ "$1" != "--" ]]; do prefix+=("$1"); shift; done
  shift
  "${prefix[@]}" "$train" --config="$work/config.textproto" --save= \
    --metrics_out="$work/$name.jsonl" "$@" > "$work/$name.log" 2>&1 ||
    { cat "$work/$name.log"; fail "$name"; }
}
run sync.local timeout 300 -- --backend=local
run ps0.local timeout 300 -- --backend=local --dp_sync=ps --ps_servers=1 --ps_staleness=0
run ps0.mpi "${mpi[@]}" -np 3 -- --backend=mpi --dp_sync=ps --ps_servers=1 --ps_staleness=0
run ps1.local timeout 300 -- --backend=local --dp_sync=ps --ps_servers=1 --ps_staleness=1
run ps1.mpi "${mpi[@]}" -np 3 -- --backend=mpi --dp_sync=ps --ps_servers=1 --ps_staleness=1
grep -q "parameter servers: 1 (ranks 2-2), staleness 0" "$work/ps0.local.log" ||
  { cat "$work/ps0.local.log"; fail "no parameter-server line in the header"; }
grep -q "gnorm n/a" "$work/ps0.local.log" || fail "the progress line should say gnorm n/a under ps"

params="$(sed -n 's/^model: \([0-9]*\) parameters.*/\1/p' "$work/ps0.local.log")"
[[ -n "$params" ]] || { cat "$work/ps0.local.log"; fail "no parameter count in the log"; }
/usr/bin/python3 - "$work" "$params" <<'PY'
import json, sys
work, params = sys.argv[1], int(sys.argv[2])
def steps(name):
    return {r["step"]: r for r in map(json.loads, open(f"{work}/{name}.jsonl")) if "loss" in r}
sync, ps0 = steps("sync.local"), steps("ps0.local")
assert sorted(sync) == sorted(ps0) == list(range(1, 7)), (sync.keys(), ps0.keys())
for s in sync:
    assert ps0[s]["loss"] == sync[s]["loss"], (s, ps0[s]["loss"], sync[s]["loss"])
    assert ps0[s]["grad_norm"] is None, ps0[s]
    assert ps0[s]["dp_bytes_sent"] == 4 * (params + 1) + 8, (s, ps0[s]["dp_bytes_sent"], params)
print("ps, staleness 0, local backend: sync's losses bit for bit; dp_bytes_sent 4(P + 1) + 8 =",
      4 * (params + 1) + 8)
local, mpi = steps("ps0.local"), steps("ps0.mpi")
assert sorted(local) == sorted(mpi) == list(range(1, 7)), (local.keys(), mpi.keys())
worst = max(abs(mpi[s]["loss"] - local[s]["loss"]) / abs(local[s]["loss"]) for s in local)
assert worst <= 1e-5, f"relative loss difference {worst:.3g} > 1e-5"
print(f"ps S=0: mpirun -np 3 against the local backend, worst relative loss difference "
      f"{worst:.3g}")
for name in ("ps1.local", "ps1.mpi"):
    run = steps(name)
    assert sorted(run) == list(range(1, 7)), run.keys()
    losses = [run[s]["loss"] for s in sorted(run)]
    assert all(l == l and abs(l) != float("inf") for l in losses), (name, losses)
    assert losses[-1] < losses[0], (name, losses)
    print(f"{name} (S=1): loss {losses[0]:.4f} -> {losses[-1]:.4f}")
PY

# Checkpoints: the servers' values and moments, pulled by the workers at
# step 3, resume exactly: steps 4-6 of the resumed run (2 servers, local and
# MPI) are the uninterrupted run's bit for bit. A ps checkpoint is a sync one
# (dp 2): resumed with --dp_sync=sync it continues the same way.
ps_flags=(--dp_sync=ps --ps_servers=2 --ps_staleness=0)
run ckpt.local timeout 300 -- --backend=local "${ps_flags[@]}" --save="$work/ckpt" \
  --save_interval=3 --keep_last=2
step3="$(ls -d "$work"/ckpt/*3 | head -1)"
[[ -d "$step3" ]] || { ls -R "$work/ckpt"; fail "no step-3 checkpoint"; }
run resume.local timeout 300 -- --backend=local "${ps_flags[@]}" --resume="$step3"
run resume.mpi "${mpi[@]}" -np 4 -- --backend=mpi "${ps_flags[@]}" --resume="$step3"
run resume_sync.local timeout 300 -- --backend=local --resume="$step3"
/usr/bin/python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def steps(name):
    return {r["step"]: r["loss"] for r in map(json.loads, open(f"{work}/{name}.jsonl"))
            if "loss" in r}
whole = steps("ckpt.local")
assert sorted(whole) == list(range(1, 7)), whole.keys()
assert whole == steps("ps0.local"), "2 servers and a checkpoint changed the losses"
for name in ("resume.local", "resume.mpi", "resume_sync.local"):
    resumed = steps(name)
    assert sorted(resumed) == [4, 5, 6], (name, resumed.keys())
    for s in resumed:
        assert resumed[s] == whole[s], (name, s, resumed[s], whole[s])
    print(f"{name}: steps 4-6 equal the uninterrupted ps run's bit for bit")
PY

# A stop signal under ps saves as every layout does (exit 128 + signal, a
# checkpoint, a resume hint): the workers agree on the step (with staleness
# 2, 2 steps later, no barrier), end the servers' run there, pull their
# state and write it. With staleness 0 the stopped and resumed run gives the
# uninterrupted run's losses bit for bit, on the local backend (SIGTERM) and
# under mpirun (SIGUSR1: mpirun kills the job on SIGTERM rather than forward
# it). (No `timeout` wrapper: it would pass the signal on twice, and a
# second signal exits at once.)
long=(--steps=400 --ps_servers=2)
run whole.local timeout 300 -- --backend=local --dp_sync=ps "${long[@]}" --ps_staleness=0
stop_and_resume() {  # NAME SIGNAL EXIT_STATUS LAUNCHER... -- FLAGS...
  local name="$1" signal="$2" expected="$3"; shift 3
  local -a launcher=()
  while [[ "$1" != "--" ]]; do launcher+=("$1"); shift; done
  shift
  "${launcher[@]}" "$train" --config="$work/config.textproto" --metrics_out="$work/$name.jsonl" \
    --save="$work/${name}_ckpt" "${long[@]}" "$@" > "$work/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 1200); do  # up to 60 s on a loaded machine
    [[ -s "$work/$name.jsonl" ]] && break
    sleep 0.05
  done
  [[ -s "$work/$name.jsonl" ]] || { kill -9 "$pid"; cat "$work/$name.log"; fail "$name: no step in 60 s"; }
  kill "-$signal" "$pid"
  local status=0
  wait "$pid" || status=$?
  [[ $status -eq $expected ]] ||
    { cat "$work/$name.log"; fail "$name: exit status $status after SIG$signal, not $expected"; }
  grep -q "stopped by SIG$signal after step" "$work/$name.log" ||
    { cat "$work/$name.log"; fail "$name: no stop line"; }
  grep -q -- "--resume=$work/${name}_ckpt" "$work/$name.log" ||
    { cat "$work/$name.log"; fail "$name: no resume hint"; }
  grep -o "stopped by SIG$signal after step [0-9]* of [0-9]*" "$work/$name.log" | head -1 |
    sed "s/^/$name: /"
  [[ -s "$work/${name}_ckpt/latest/rank_00001.tensors" ]] || fail "$name: no checkpoint"
  "${launcher[@]}" "$train" --config="$work/config.textproto" --metrics_out="$work/$name.jsonl" \
    --save= --resume="$work/${name}_ckpt" "${long[@]}" "$@" > "$work/$name.resumed.log" 2>&1 ||
    { cat "$work/$name.resumed.log"; fail "$name: resume"; }
}
stop_and_resume term0.local TERM 143 -- --backend=local --dp_sync=ps --ps_staleness=0
stop_and_resume usr0.mpi USR1 138 "${mpi[@]:2}" -np 4 -- --backend=mpi --dp_sync=ps --ps_staleness=0
stop_and_resume term2.local TERM 143 -- --backend=local --dp_sync=ps --ps_staleness=2
/usr/bin/python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def losses(name):
    return [(r["step"], r["loss"]) for r in map(json.loads, open(f"{work}/{name}.jsonl"))
            if "loss" in r]
whole = losses("whole.local")
assert [s for s, _ in whole] == list(range(1, 401)), len(whole)
for name in ("term0.local", "usr0.mpi"):
    cut = losses(name)
    assert cut == whole, f"{name}: the stopped and resumed run differs from the whole run"
    print(f"{name} (S=0): stopped, saved, resumed; 400 losses bitwise equal to the whole run")
# With staleness 2 a worker's reads depend on timing: every step is reported
# once, in order (the deferred steps come out before the save), and it learns.
cut = losses("term2.local")
assert [s for s, _ in cut] == list(range(1, 401)), [s for s, _ in cut]
assert all(l == l for _, l in cut) and cut[-1][1] < cut[0][1], (cut[0], cut[-1])
print("term2.local (S=2): stopped, saved, resumed; steps 1-400 once each, loss",
      f"{cut[0][1]:.4f} -> {cut[-1][1]:.4f}")
PY

# Refusals, each naming its rule.
refused() {  # NAME EXPECTED_TEXT COMMAND...
  local name="$1" expected="$2"; shift 2
  if "$@" > "$work/$name.log" 2>&1; then cat "$work/$name.log"; fail "$name was accepted"; fi
  grep -qF -- "$expected" "$work/$name.log" ||
    { cat "$work/$name.log"; fail "$name: no '$expected' in the message"; }
  echo "refused as expected: $name"
}
refused wrong_np "layout needs tp x pp x dp workers + ps_servers = 2 + 1 = 3 ranks (run mpirun -np 3)" \
  "${mpi[@]}" -np 2 "$train" --config="$work/config.textproto" --save= --backend=mpi \
  --dp_sync=ps --ps_servers=1
refused fp16 "precision=fp16 does not combine with layout.dp_sync=ps" \
  timeout 300 "$train" --config="$work/config.textproto" --save= --backend=local \
  --dp_sync=ps --ps_servers=1 --precision=fp16
