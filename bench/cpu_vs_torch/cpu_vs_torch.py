#!/usr/bin/python3
"""Trains the same GPT in trident and in PyTorch, one after the other, and
prints per-step tokens/s of each and their ratio (README.md here).

For each model size and thread count: trident's serial training step
(bench/train_step/train_step_bench --steps_only, a config written here) and
torch_train.py (eager PyTorch, fp32, AdamW), alternating, --rounds times; the
table shows the best round of each (the least disturbed by other work on a
shared machine) and the range.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

# name: (layers, hidden, heads, seq). Vocabulary 256 (bytes), ffn 4 x hidden.
SIZES = {
    "default": (4, 128, 4, 128),
    "8L-h512-T256": (8, 512, 8, 256),
    "12L-h768-T128": (12, 768, 12, 128),
}
VOCAB = 256

CONFIG = """model {{
  vocab_size: {vocab}
  context_length: {seq}
  num_layers: {layers}
  num_heads: {heads}
  hidden_size: {hidden}
  ffn_hidden_size: 0
  tied_embeddings: true
  init_std: 0.02
}}
layout {{
  tensor_parallel: 1
  pipeline_parallel: 1
  data_parallel: 1
  micro_batch_size: {batch}
  num_micro_batches: 1
}}
optimizer {{
  learning_rate: 1e-3
  min_learning_rate: 1e-4
  warmup_steps: 0
  decay: COSINE
  beta1: 0.9
  beta2: 0.95
  epsilon: 1e-8
  weight_decay: 0.1
  grad_clip: 1.0
}}
data {{
  train_path: "unused.bin"
  tokenizer: "byte"
  seq_length: {seq}
}}
steps: 1000
seed: 1234
"""

_RESULT = re.compile(r"^(steps_only|torch): tokens_per_s=([0-9.]+) step_ms=([0-9.]+)", re.M)
# trident's line also carries its step's GEMMs replayed alone.
_GEMM_FLOOR = re.compile(r"^steps_only: .* gemm_ms=([0-9.]+) gemm_gflop=([0-9.]+)", re.M)


def run(command, env=None):
    """(tokens/s, step ms, GEMM floor ms or None) from a result line."""
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"cpu_vs_torch: {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    match = _RESULT.search(done.stdout)
    if not match:
        sys.exit(f"cpu_vs_torch: no result line from {' '.join(command)}:\n{done.stdout}")
    floor = _GEMM_FLOOR.search(done.stdout)
    return (float(match.group(2)), float(match.group(3)),
            float(floor.group(1)) if floor else None)


def torch_env(threads, policy):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OMP_WAIT_POLICY"] = policy
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trident_bench", default="bench/train_step/train_step_bench")
    parser.add_argument("--torch_script", default="bench/cpu_vs_torch/torch_train.py")
    parser.add_argument("--reference", default="tests/reference/gpt2_reference.py")
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help="comma list of " + ", ".join(SIZES))
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts")
    parser.add_argument("--batch", type=int, default=8, help="sequences per step")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--omp_wait_policy", default="PASSIVE",
                        help="OMP_WAIT_POLICY for PyTorch (ACTIVE spins: ~12x slower at 2 "
                        "threads on a shared 2-core machine)")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    for s in sizes:
        if s not in SIZES:
            parser.error(f"--sizes: unknown size {s!r} (known: {', '.join(SIZES)})")
    threads = [int(t) for t in args.threads.split(",")]
    if any(t < 1 for t in threads):
        parser.error(f"--threads={args.threads}: every count must be >= 1")
    for name in ("batch", "steps", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}={getattr(args, name)} must be >= 1")

    print(f"batch {args.batch} sequences, vocabulary {VOCAB}, {args.warmup} warm-up + "
          f"{args.steps} timed steps (median), best of {args.rounds} round(s); PyTorch "
          f"{torch_version()} eager fp32 with OMP_WAIT_POLICY={args.omp_wait_policy}")
    print("Ceiling: PyTorch's step over trident's GEMMs replayed alone (the same OpenBLAS "
          "calls, back to back): the ratio no step calling those GEMMs can pass.")
    print("| model | threads | tokens/step | trident tokens/s | PyTorch tokens/s | "
          "trident / PyTorch | trident GEMMs alone (ms) | PyTorch step (ms) | ceiling |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            layers, hidden, heads, seq = SIZES[size]
            config = os.path.join(tmp, size + ".textproto")
            with open(config, "w") as f:
                f.write(CONFIG.format(vocab=VOCAB, seq=seq, layers=layers, heads=heads,
                                      hidden=hidden, batch=args.batch))
            for t in threads:
                ours, theirs, floors, torch_ms = [], [], [], []
                for _ in range(args.rounds):
                    mine = run([args.trident_bench, f"--config={config}", f"--threads={t}",
                                     "--steps_only", f"--warmup={max(1, args.warmup)}",
                                     f"--steps={args.steps}"])
                    ours.append(mine[0])
                    floors.append(mine[2])
                    baseline = run(
                        ["/usr/bin/python3", args.torch_script, f"--reference={args.reference}",
                         f"--layers={layers}", f"--hidden={hidden}", f"--heads={heads}",
                         f"--vocab={VOCAB}", f"--seq={seq}", f"--batch={args.batch}",
                         f"--threads={t}", f"--warmup={args.warmup}", f"--steps={args.steps}"],
                        env=torch_env(t, args.omp_wait_policy))
                    theirs.append(baseline[0])
                    torch_ms.append(baseline[1])
                # Best rounds on both sides: the fastest PyTorch step over the
                # fastest GEMM replay.
                print(f"| {size} | {t} | {args.batch * seq} | {fmt(ours)} | {fmt(theirs)} | "
                      f"{max(ours) / max(theirs):.2f}x | {min(floors):,.1f} | "
                      f"{min(torch_ms):,.1f} | {min(torch_ms) / min(floors):.2f}x |", flush=True)


def fmt(values):
    best = max(values)
    if len(values) == 1:
        return f"{best:,.0f}"
    return f"{best:,.0f} ({min(values):,.0f}-{best:,.0f})"


def torch_version():
    done = subprocess.run(["/usr/bin/python3", "-c", "import torch; print(torch.__version__)"],
                          capture_output=True, text=True)
    return done.stdout.strip() or "?"


if __name__ == "__main__":
    main()
