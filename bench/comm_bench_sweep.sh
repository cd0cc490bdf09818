#!/bin/bash
# Runs comm_bench on the configurations of bench/README.md: local with 2, 4 and
# 8 ranks, MPI with 2 and 4 ranks. Usage (from the workspace root):
#   bench/comm_bench_sweep.sh [OUTPUT_DIR] [extra comm_bench flags...]
# Each run's table goes to OUTPUT_DIR/<backend>_np<N>.txt (default /tmp/comm_bench).
set -euo pipefail

out="${1:-/tmp/comm_bench}"
shift || true
mkdir -p "${out}"
bazel build //bench:comm_bench
bench="$(bazel info bazel-bin 2>/dev/null)/bench/comm_bench"

for n in 2 4 8; do
  echo "== local, ${n} ranks (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "${bench}" --backend=local --ranks="${n}" "$@" | tee "${out}/local_np${n}.txt"
done
for n in 2 4; do
  echo "== mpi, ${n} ranks (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  mpirun --allow-run-as-root --oversubscribe --bind-to none -np "${n}" "${bench}" --backend=mpi "$@" |
    tee "${out}/mpi_np${n}.txt"
done
