#!/bin/bash
# Runs a test binary under mpirun: run_under_mpirun.sh NUM_RANKS BINARY [ARGS...]
# mpirun exits non-zero when any rank does, so a failure on any rank fails the
# Bazel test. CI runs as root on 2 cores: hence --allow-run-as-root and
# --oversubscribe (never force mpi_yield_when_idle=0 when oversubscribed: Open MPI
# turns yielding on by itself, and busy-polling ranks starve each other).
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 NUM_RANKS BINARY [ARGS...]" >&2
  exit 2
fi
num_ranks="$1"
binary="$2"
shift 2

if ! command -v mpirun >/dev/null 2>&1; then
  echo "$0: mpirun not found (install openmpi-bin)" >&2
  exit 1
fi

# Under `bazel test` the working directory is the runfiles tree, where the
# binary's $(location) path resolves.
exec mpirun --allow-run-as-root --oversubscribe --bind-to none -np "${num_ranks}" \
  "${binary}" "$@"
