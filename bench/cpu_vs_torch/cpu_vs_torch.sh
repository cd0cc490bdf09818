#!/usr/bin/env bash
# Runs cpu_vs_torch.py from its runfiles (bazel run, or bazel-bin/ directly).
set -euo pipefail
if [[ -d "$0.runfiles/trident" ]]; then cd "$0.runfiles/trident"; fi
exec /usr/bin/python3 bench/cpu_vs_torch/cpu_vs_torch.py "$@"
