#!/usr/bin/env bash
# The GPU checks of the CUDA backend, run on a machine with one H100 that has
# no Bazel: binaries are built here and carried there in one folder.
#
#   Here (with Bazel and the CUDA Toolkit):
#     bench/gpu_gpt2/run_device_checks.sh stage [.device/gpu_checks]
#   builds every test tagged `gpu` and every benchmark tagged `gpu_bench`
#   with -c opt (nvcc emits sm_90 + compute_90,
#   build_defs/cuda.bzl) and copies the binaries into the folder with the
#   shared libraries they need that a bare CUDA machine lacks (Abseil,
#   OpenBLAS, libstdc++, cudart). cuBLASLt (~500 MB) is not copied: the device
#   image's CUDA 13 provides it.
#
#   There (the device tool carries the ignored .device/gpu_checks.tar.gz, the
#   staged folder packed under its 64 MiB limit; `run` unpacks it):
#     bench/gpu_gpt2/run_device_checks.sh run [.device/gpu_checks]
#   runs each test binary, prints what it ran and each result, and exits
#   non-zero if any test failed or none ran on a GPU.
#
#   There too: bench/gpu_gpt2/run_device_checks.sh baseline [args]
#   trains the PyTorch GPT-2 124M baseline (torch_gpt2.py) on synthetic
#   tokens and prints tokens/s and MFU per step and their medians.
#
#   And: bench/gpu_gpt2/run_device_checks.sh gpt2 [folder] [bench flags]
#   runs our GPT-2 124M benchmark (gpu_gpt2_bench, tag gpu_gpt2_bench: staged
#   into FOLDER/gpt2, not run by `run`), then the PyTorch baseline with the
#   same micro-batch, in one invocation, and prints ours / PyTorch of the
#   median tokens/s.
set -uo pipefail

mode="${1:-}"
dir="${2:-.device/gpu_checks}"

stage() {
  cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
  local targets
  targets=$(./bazelw query 'attr(tags, "\bgpu\b", tests(//...))' 2>/dev/null | tr '\n' ' ') || {
    echo "stage: bazel query for the gpu tests failed" >&2
    exit 1
  }
  # GPU benchmarks (tag gpu_bench): run after the tests; a benchmark that
  # fails counts as a failed check.
  local benches
  benches=$(./bazelw query 'attr(tags, "\bgpu_bench\b", //...)' 2>/dev/null | tr '\n' ' ') || {
    echo "stage: bazel query for the gpu benchmarks failed" >&2
    exit 1
  }
  # The GPT-2 124M benchmark (tag gpu_gpt2_bench): run by the gpt2 mode only.
  local gpt2
  gpt2=$(./bazelw query 'attr(tags, "\bgpu_gpt2_bench\b", //...)' 2>/dev/null | tr '\n' ' ') || {
    echo "stage: bazel query for the GPT-2 benchmark failed" >&2
    exit 1
  }
  echo "stage: building with -c opt:"
  echo "${targets} ${benches} ${gpt2}" | tr ' ' '\n' | sed '/^$/d; s/^/  /'
  # shellcheck disable=SC2086
  ./bazelw build -c opt ${targets} ${benches} ${gpt2} || exit 1
  rm -rf "${dir}"
  mkdir -p "${dir}/bin" "${dir}/bench" "${dir}/gpt2" "${dir}/lib"
  local target binary
  for target in ${targets} ${benches} ${gpt2}; do
    # //pkg:name -> bazel-bin/pkg/name (bazel-bin now points at the opt build).
    binary="bazel-bin/$(echo "${target#//}" | tr ':' '/')"
    if [[ " ${gpt2} " == *" ${target} "* ]]; then
      cp "${binary}" "${dir}/gpt2/"
    elif [[ " ${benches} " == *" ${target} "* ]]; then
      cp "${binary}" "${dir}/bench/"
    else
      cp "${binary}" "${dir}/bin/"
    fi
    # Every shared library outside glibc and outside cuBLASLt/cuDNN/NCCL.
    ldd "${binary}" | awk '$3 ~ /^\// {print $3}' |
      grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*)\.so|libcublas|libcudnn|libnccl' |
      xargs -r cp -L -t "${dir}/lib/"
  done
  echo "stage: $(ls "${dir}/bin" | wc -l) binaries, $(du -sh "${dir}" | cut -f1) in ${dir}"
  # The device tool carries at most 64 MiB (OpenBLAS alone is 36 MB): carry
  # the archive, which `run` unpacks when the folder is not there.
  tar czf "${dir}.tar.gz" -C "$(dirname "${dir}")" "$(basename "${dir}")" || exit 1
  echo "stage: carry ${dir}.tar.gz ($(du -sh "${dir}.tar.gz" | cut -f1))"
}

# Unpacks the staged archive next to it when the folder itself was not carried.
unpack() {
  if [[ ! -d "${dir}/bin" && -f "${dir}.tar.gz" ]]; then
    tar xzf "${dir}.tar.gz" -C "$(dirname "${dir}")" || exit 1
  fi
}

# Directories holding libcublasLt and libcudnn on the device machine: the
# toolkit, or the nvidia wheels of the image's Python (cuDNN's first).
cuda_library_path() {
  local found=""
  for candidate in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -e "${candidate}/libcublasLt.so.13" ]] && found="${found}:${candidate}"
  done
  local wheel
  wheel=$(python3 -c 'import nvidia.cu13, os; print(os.path.join(nvidia.cu13.__path__[0], "lib"))' \
            2>/dev/null)
  [[ -n "${wheel}" && -e "${wheel}/libcublasLt.so.13" ]] && found="${found}:${wheel}"
  # cuDNN 9.19 (what the attention graphs were written against) lives only in
  # the image's nvidia-cudnn wheel; an older cuDNN 9.14 sits in the system
  # paths, so the wheel's directory goes first.
  local cudnn
  cudnn=$(python3 -c 'import nvidia.cudnn, os; print(os.path.join(nvidia.cudnn.__path__[0], "lib"))' \
            2>/dev/null)
  [[ -n "${cudnn}" && -e "${cudnn}/libcudnn.so.9" ]] && found="${cudnn}:${found#:}"
  echo "${found#:}"
}

run() {
  cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
  unpack
  [[ -d "${dir}/bin" ]] || { echo "run: no ${dir}/bin: stage it first" >&2; exit 1; }
  local cuda_libs
  cuda_libs="$(cuda_library_path)"
  echo "run: GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>&1 | head -1)"
  echo "run: cuBLASLt/cuDNN from: ${cuda_libs:-NOT FOUND}"
  export LD_LIBRARY_PATH="${PWD}/${dir}/lib:${cuda_libs}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
  local failed=0 ran=0 skipped_any=0 binary log
  for binary in "${dir}"/bin/*; do
    log="$(mktemp)"
    echo "=== $(basename "${binary}")"
    "${binary}" --gtest_color=no >"${log}" 2>&1
    local rc=$?
    # Each test's own result line (the summary repeats them without a time).
    grep -E '^\[ *(OK|FAILED|SKIPPED) *\] .*\([0-9]+ ms\)$|Failure$' "${log}" | sed 's/^/  /'
    grep -q '^\[  SKIPPED \]' "${log}" && skipped_any=1
    ran=$((ran + 1))
    if [[ ${rc} -ne 0 ]]; then
      failed=$((failed + 1))
      echo "  exit status ${rc}; last lines:"
      tail -5 "${log}" | sed 's/^/    /'
    fi
    rm -f "${log}"
  done
  for binary in "${dir}"/bench/*; do
    [[ -e "${binary}" ]] || continue
    echo "=== benchmark $(basename "${binary}")"
    "${binary}" 2>&1 | sed 's/^/  /'
    if [[ ${PIPESTATUS[0]} -ne 0 ]]; then
      failed=$((failed + 1))
      echo "  benchmark failed"
    fi
  done
  echo "run: ${ran} test binaries, ${failed} failed$([[ ${skipped_any} -eq 1 ]] && echo ', some tests SKIPPED (no GPU seen?)')"
  [[ ${failed} -eq 0 && ${ran} -gt 0 && ${skipped_any} -eq 0 ]]
}

# The PyTorch GPT-2 124M baseline (torch_gpt2.py) with the image's PyTorch;
# extra arguments go to the script (e.g. --steps 10).
baseline() {
  cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
  local python=/opt/torch/.venv/bin/python
  [[ -x "${python}" ]] || python=python3
  PYTHONUNBUFFERED=1 "${python}" bench/gpu_gpt2/torch_gpt2.py "$@"
}

# Ours, then PyTorch's, GPT-2 124M on this GPU in one invocation; prints the
# ratio of the median tokens/s (ours / PyTorch). Extra arguments go to
# gpu_gpt2_bench (--micro_batch_size is passed on to the baseline's
# --batch_size).
gpt2() {
  cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
  unpack
  local bench="${dir}/gpt2/gpu_gpt2_bench"
  [[ -x "${bench}" ]] || { echo "gpt2: no ${bench}: stage it first" >&2; exit 1; }
  local micro_batch=16 arg
  for arg in "$@"; do
    [[ "${arg}" == --micro_batch_size=* ]] && micro_batch="${arg#--micro_batch_size=}"
  done
  local cuda_libs ours theirs
  cuda_libs="$(cuda_library_path)"
  ours="$(mktemp)" theirs="$(mktemp)"
  echo "=== ours: gpu_gpt2_bench $*"
  LD_LIBRARY_PATH="${PWD}/${dir}/lib:${cuda_libs}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}" \
    "${bench}" "$@" 2>&1 | tee "${ours}"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "gpt2: our benchmark failed"; exit 1; }
  echo "=== PyTorch: torch_gpt2.py --batch_size ${micro_batch}"
  baseline --batch_size "${micro_batch}" 2>&1 | tee "${theirs}"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "gpt2: the PyTorch baseline failed"; exit 1; }
  local our_rate their_rate
  our_rate=$(sed -n 's/^median over [0-9]* timed steps: \([0-9.]*\) tokens\/s.*/\1/p' "${ours}")
  their_rate=$(sed -n 's/^median over [0-9]* timed steps: \([0-9.]*\) tokens\/s.*/\1/p' "${theirs}")
  rm -f "${ours}" "${theirs}"
  [[ -n "${our_rate}" && -n "${their_rate}" ]] || { echo "gpt2: a median line is missing"; exit 1; }
  awk -v a="${our_rate}" -v b="${their_rate}" 'BEGIN {
    printf "gpt2: ours %.0f tokens/s, PyTorch %.0f tokens/s: ours / PyTorch = %.3f\n", a, b, a / b }'
}

case "${mode}" in
  stage) stage ;;
  run) run ;;
  baseline) shift; baseline "$@" ;;
  gpt2)
    shift
    # An optional folder first, then the benchmark's flags.
    if [[ $# -gt 0 && "$1" != --* ]]; then dir="$1"; shift; else dir=".device/gpu_checks"; fi
    gpt2 "$@"
    ;;
  *)
    echo "usage: $0 stage|run [folder, default .device/gpu_checks] | baseline [torch_gpt2.py args] | gpt2 [folder] [gpu_gpt2_bench flags]" >&2
    exit 2
    ;;
esac
