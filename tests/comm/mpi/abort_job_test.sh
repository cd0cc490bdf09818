#!/bin/bash
# A failing MPI rank ends the whole job at once (MpiAbortJob), and a group
# creation that a member never joins ends it after the timeout (the watchdog):
# tests/comm/mpi/abort_job_main.cc under mpirun -np 2, every run bounded.
set -euo pipefail

binary="$(realpath "$1")"
work="${TEST_TMPDIR:-$(mktemp -d)}/abort_job"
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
if ! command -v mpirun >/dev/null 2>&1; then
  echo "mpirun not found: skipped"
  exit 0
fi

# run MODE LIMIT_S PATTERN: the job fails within LIMIT_S seconds and its first
# line from a rank matches PATTERN.
run() {
  local mode="$1" limit="$2" pattern="$3" start=$SECONDS status=0
  timeout -k 5 60 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
    "$binary" "$mode" > "$work/$mode.log" 2>&1 || status=$?
  local took=$((SECONDS - start))
  [[ $status -ne 0 ]] || { cat "$work/$mode.log"; fail "$mode: the job succeeded"; }
  ((took <= limit)) || { cat "$work/$mode.log"; fail "$mode: took $took s (limit $limit s)"; }
  grep -m1 "rank [0-9]" "$work/$mode.log" | grep -q -- "$pattern" ||
    { cat "$work/$mode.log"; fail "$mode: the first message does not match '$pattern'"; }
  echo "$mode: ended in $took s with status $status"
}

run fail 10 "^abort_job_main: rank 1: INTERNAL: rank one failed"
run create_group 12 \
  "rank 0: DEADLINE_EXCEEDED: creating group 'pair' from world (world ranks 0, 1) did not complete within 1s"
echo "PASS"
