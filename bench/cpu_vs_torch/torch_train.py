#!/usr/bin/python3
"""The PyTorch side of bench/cpu_vs_torch: times training steps of a GPT-2 in
eager PyTorch, fp32, AdamW, on synthetic tokens, and prints one line
`torch: tokens_per_s=<median> step_ms=<median> min_step_ms=<min>`.

The model is tests/reference/gpt2_reference.py's Gpt2 (the reference the C++
model is checked against), here in float32 with freshly initialised weights
(normal(0, 0.02) matrices and embeddings, zero biases, unit LayerNorm gains).
One step is what trident's trainer does: zero the gradients, forward with the
mean cross-entropy, backward, clip the gradient norm to 1.0, AdamW (weight
decay 0.1 on matrices and embeddings only). Threads: torch.set_num_threads;
the caller sets OMP_WAIT_POLICY (bench/cpu_vs_torch/README.md says why).
"""

import argparse
import importlib.util
import os
import statistics
import time

import torch
import torch.nn.functional as F


def load_reference(path):
    spec = importlib.util.spec_from_file_location("gpt2_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def init_params(layers, hidden, heads, ffn, vocab, positions, generator):
    def normal(*shape):
        return torch.randn(*shape, generator=generator) * 0.02

    p = {"wte.weight": normal(vocab, hidden), "wpe.weight": normal(positions, hidden),
         "ln_f.weight": torch.ones(hidden), "ln_f.bias": torch.zeros(hidden)}
    for i in range(layers):
        pre = f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            p[pre + ln + ".weight"] = torch.ones(hidden)
            p[pre + ln + ".bias"] = torch.zeros(hidden)
        for name, fan_in, fan_out in (("attn.c_attn", hidden, 3 * hidden),
                                      ("attn.c_proj", hidden, hidden),
                                      ("mlp.c_fc", hidden, ffn), ("mlp.c_proj", ffn, hidden)):
            p[pre + name + ".weight"] = normal(fan_in, fan_out)
            p[pre + name + ".bias"] = torch.zeros(fan_out)
    return {k: v.float().requires_grad_(True) for k, v in p.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="path of gpt2_reference.py")
    parser.add_argument("--layers", type=int, required=True)
    parser.add_argument("--hidden", type=int, required=True)
    parser.add_argument("--heads", type=int, required=True)
    parser.add_argument("--vocab", type=int, required=True)
    parser.add_argument("--seq", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    for name in ("layers", "hidden", "heads", "vocab", "seq", "batch", "threads", "steps",
                 "warmup"):
        if getattr(args, name) < (0 if name == "warmup" else 1):
            parser.error(f"--{name}={getattr(args, name)} must be positive")
    if args.hidden % args.heads:
        parser.error(f"--hidden={args.hidden} is not a multiple of --heads={args.heads}")

    torch.set_num_threads(args.threads)
    reference = load_reference(args.reference)
    generator = torch.Generator().manual_seed(1234)
    ffn = 4 * args.hidden
    params = init_params(args.layers, args.hidden, args.heads, ffn, args.vocab, args.seq,
                         generator)
    model = reference.Gpt2(params, {"n_layer": args.layers, "n_head": args.heads})
    names = sorted(params)
    optimizer = torch.optim.AdamW(
        [{"params": [params[n] for n in names if reference.decays(n)], "weight_decay": 0.1},
         {"params": [params[n] for n in names if not reference.decays(n)], "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    tokens = torch.randint(0, args.vocab, (args.batch, args.seq + 1), generator=generator)
    inputs, targets = tokens[:, :-1], tokens[:, 1:]

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model.logits(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([params[n] for n in names], 1.0)
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    if loss != loss:
        raise SystemExit("torch_train: the loss is NaN")
    median = statistics.median(times)
    print(f"torch: tokens_per_s={args.batch * args.seq / median:.1f} step_ms={median * 1e3:.3f} "
          f"min_step_ms={min(times) * 1e3:.3f} loss={loss:.4f} threads={torch.get_num_threads()} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}")


if __name__ == "__main__":
    main()
