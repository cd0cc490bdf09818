#!/bin/bash
# One failing rank ends the whole job within seconds, on every backend, with
# the failing rank's message first (DESIGN.md, "Failure model"): a damaged
# checkpoint rank file that only rank 3 reads, on the local backend and under
# mpirun; and under mpirun a stopped rank (kill -STOP: ends within
# --comm_timeout_s, naming it) and a killed one (kill -9). Every run is bounded
# by `timeout`, so a regression fails here instead of hanging.
set -euo pipefail

train="$(realpath "$1")"
prepare_data="$(realpath "$2")"
work="${TEST_TMPDIR:-$(mktemp -d)}/train_failure"
rm -rf "$work" && mkdir -p "$work"
export HOME="$work/home"  # the CPU peak cache goes here, not into the user's home
fail() { echo "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
# seconds_since START: elapsed seconds, rounded down.
seconds_since() { echo "$(now) - $1" | bc | cut -d. -f1 | sed 's/^$/0/'; }

source "$(dirname "$0")/testlib.sh"
write_corpus "$work/corpus.txt" 300 2
"$prepare_data" --input="$work/corpus.txt" --output_dir="$work/data" --val_fraction=0.1 >/dev/null

config="$work/config.textproto"
{ tiny_job "$work/data" 4; cat <<CONFIG
steps: 6
eval_interval: 0
CONFIG
} > "$config"
# Four ranks: tp 2 x pp 2. The timeout is a minute: no case below may wait for it.
layout=(--tp=2 --pp=2 --peak_tflops=1 --metrics_out= --comm_timeout_s=60)

# A checkpoint whose rank 3 file has one flipped byte (same size, bad CRC):
# only rank 3 reads it, after the others have started waiting for it.
"$train" --config="$config" "${layout[@]}" --save="$work/ckpt" > "$work/save.log" 2>&1 ||
  { cat "$work/save.log"; fail "saving the checkpoint"; }
cp -rL "$work/ckpt/latest" "$work/damaged"  # one checkpoint of the save directory
/usr/bin/python3 - "$work/damaged/rank_00003.tensors" <<'PY'
import sys
path = sys.argv[1]
blob = bytearray(open(path, "rb").read())
blob[len(blob) // 2] ^= 0xFF
open(path, "wb").write(bytes(blob))
PY
damaged=(--config="$config" "${layout[@]}" --save= --steps=10 --resume="$work/damaged")

# expect_failure NAME LIMIT_S: the run logged in $work/NAME.log failed (exit
# status $status) within LIMIT_S seconds of $start.
expect_failure() {
  local name="$1" limit="$2" took
  took="$(seconds_since "$start")"
  # (A run cut short by `timeout` or the watchdog fails the time limit.)
  [[ $status -ne 0 ]] || { cat "$work/$name.log"; fail "$name: exit status 0"; }
  (( took <= limit )) || { cat "$work/$name.log"; fail "$name took $took s (limit $limit s)"; }
  echo "$name: ended in $took s with status $status"
}

# Local backend: rank 3's error ends every rank thread at once.
start="$(now)"
status=0
timeout -k 5 60 "$train" "${damaged[@]}" > "$work/local.log" 2>&1 || status=$?
expect_failure local 5
[[ $status -eq 1 ]] || { cat "$work/local.log"; fail "local: exit status $status, not 1"; }
grep -q "^train: DATA_LOSS: rank 3: tensor file '.*rank_00003.tensors'.* is corrupted" \
  "$work/local.log" || { cat "$work/local.log"; fail "local: no message from rank 3"; }
if grep -q "aborted: rank 3 failed" "$work/local.log"; then
  cat "$work/local.log"; fail "local: an aborted rank's status hid rank 3's own"
fi

if ! command -v mpirun >/dev/null 2>&1; then
  echo "mpirun not found: the MPI cases are skipped"
  echo "PASS"
  exit 0
fi
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 4)

# rank_pid MPIRUN_PID RANK: the pid of that rank's process (a child of mpirun).
rank_pid() {
  local p
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# first_error NAME: the first line a rank printed about a failure.
first_error() { grep -m1 "^train: rank [0-9]*: " "$work/$1.log" || true; }

# MPI: rank 3 prints its message, then MPI_Abort ends the job.
start="$(now)"
status=0
timeout -k 5 60 "${mpi[@]}" "$train" "${damaged[@]}" > "$work/mpi_damaged.log" 2>&1 || status=$?
expect_failure mpi_damaged 10
first_error mpi_damaged | grep -q "^train: rank 3: DATA_LOSS: tensor file '.*rank_00003.tensors'" ||
  { cat "$work/mpi_damaged.log"; fail "mpi_damaged: rank 3's message is not the first"; }

# start_long_run NAME TIMEOUT_S: a long MPI run in the background, once it
# trains; sets $mpirun_pid.
start_long_run() {
  local name="$1"
  "${mpi[@]}" "$train" --config="$config" "${layout[@]}" --save= --steps=1000000 \
    --comm_timeout_s="$2" > "$work/$name.log" 2>&1 &
  mpirun_pid=$!
  for _ in $(seq 1 300); do
    grep -q "^step" "$work/$name.log" 2>/dev/null && return 0
    kill -0 "$mpirun_pid" 2>/dev/null || { cat "$work/$name.log"; fail "$name: mpirun ended"; }
    sleep 0.1
  done
  cat "$work/$name.log"; fail "$name: no step within 30 s"
}
# wait_bounded LIMIT_S: waits for $mpirun_pid, killing the job after LIMIT_S
# seconds; sets $status.
wait_bounded() {
  local victim="$1" limit="$2"
  ( sleep "$limit"; kill -9 "$mpirun_pid" "$victim" 2>/dev/null ) &
  local watchdog=$!
  status=0
  wait "$mpirun_pid" || status=$?
  kill "$watchdog" 2>/dev/null || true
  wait "$watchdog" 2>/dev/null || true
  kill -9 "$victim" 2>/dev/null || true  # A stopped rank left behind.
}

# A stopped rank: the others time out after 3 s, name it, and abort the job.
start_long_run mpi_stopped 3
victim="$(rank_pid "$mpirun_pid" 3)" || fail "no rank 3 process"
start="$(now)"
kill -STOP "$victim"
wait_bounded "$victim" 30
expect_failure mpi_stopped 10
# Whoever times out first may be waiting for a rank that waits for rank 3:
# the message names rank 3 by its silent heartbeat.
first_error mpi_stopped | grep -q "DEADLINE_EXCEEDED: .* timed out after 3s" ||
  { cat "$work/mpi_stopped.log"; fail "mpi_stopped: the first message is not a timeout"; }
first_error mpi_stopped | grep -q "world rank 3 shows no sign of life" ||
  { cat "$work/mpi_stopped.log"; fail "mpi_stopped: the first message does not name rank 3"; }

# A killed rank: mpirun sees the process die and ends the job.
start_long_run mpi_killed 60
victim="$(rank_pid "$mpirun_pid" 3)" || fail "no rank 3 process"
start="$(now)"
kill -9 "$victim"
wait_bounded "$victim" 30
expect_failure mpi_killed 10
grep -q "rank 3 .*exited on signal 9" "$work/mpi_killed.log" ||
  { cat "$work/mpi_killed.log"; fail "mpi_killed: mpirun did not name rank 3"; }
echo "PASS"
