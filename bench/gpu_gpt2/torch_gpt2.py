#!/usr/bin/env python3
"""The PyTorch baseline the GPU GPT-2 benchmark compares against.

nanoGPT-style GPT-2 124M (12 layers, 768 wide, 12 heads, vocabulary 50304 --
GPT-2's 50257 padded to a multiple of 128 --, T = 1024, tied token embedding
and output head), trained on synthetic tokens (the device machine has no
internet) with torch.compile, bf16 autocast, F.scaled_dot_product_attention
(is_causal=True: PyTorch picks its flash/cuDNN kernel) and fused AdamW.

Prints, per timed step, the loss, the step time, tokens/s and MFU; then the
medians over the timed steps. MFU = tokens/s * (6 N + 12 L d T) / 989e12, with
N the parameters without the position embedding (nanoGPT's convention: the
tied token embedding counts once, as the output head's matmul) and 989e12 the
H100 SXM's dense bf16 peak (the H200 has the same).

Run on the device machine: /opt/torch/.venv/bin/python bench/gpu_gpt2/torch_gpt2.py
(or bench/gpu_gpt2/run_device_checks.sh baseline).
"""

import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PEAK_BF16_FLOPS = 989e12


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        # [B, T, C] -> [B, H, T, D]
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))


class Block(nn.Module):
    def __init__(self, d_model, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head)
        self.ln_2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(approximate="tanh"), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab, seq_len, n_layer, d_model, n_head):
        super().__init__()
        self.wte = nn.Embedding(vocab, d_model)
        self.wpe = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        self.apply(self._init)
        # GPT-2's scaled init of the residual projections.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        t = idx.shape[1]
        pos = torch.arange(t, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch_size", type=int, default=16, help="sequences per step")
    p.add_argument("--seq_len", type=int, default=1024)
    p.add_argument("--n_layer", type=int, default=12)
    p.add_argument("--d_model", type=int, default=768)
    p.add_argument("--n_head", type=int, default=12)
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--steps", type=int, default=30, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation happens here)")
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--no_compile", action="store_true", help="skip torch.compile")
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args()
    for name in ("batch_size", "seq_len", "n_layer", "d_model", "n_head", "vocab", "steps"):
        if getattr(args, name) <= 0:
            p.error(f"--{name} is {getattr(args, name)}: must be > 0")
    if args.warmup < 0:
        p.error(f"--warmup is {args.warmup}: must be >= 0")
    if args.d_model % args.n_head != 0:
        p.error(f"--d_model {args.d_model} is not a multiple of --n_head {args.n_head}")
    return args


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch_gpt2.py: no CUDA device (this baseline runs on the GPU machine only)")
    if not hasattr(F, "scaled_dot_product_attention"):
        sys.exit(f"torch_gpt2.py: PyTorch {torch.__version__} has no F.scaled_dot_product_attention")
    torch.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device = torch.device("cuda")

    model = GPT(args.vocab, args.seq_len, args.n_layer, args.d_model, args.n_head).to(device)
    n_params = sum(p.numel() for p in model.parameters())  # the tied weight once
    n_flop_params = n_params - model.wpe.weight.numel()
    flops_per_token = 6 * n_flop_params + 12 * args.n_layer * args.d_model * args.seq_len

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    step_fn_model = model if args.no_compile else torch.compile(model)

    tokens_per_step = args.batch_size * args.seq_len
    print(f"GPU: {torch.cuda.get_device_name()}; PyTorch {torch.__version__}; "
          f"compile {'off' if args.no_compile else 'on'}")
    print(f"model: {n_params / 1e6:.2f}M parameters ({n_flop_params / 1e6:.2f}M without wpe), "
          f"L={args.n_layer} d={args.d_model} H={args.n_head} T={args.seq_len} V={args.vocab}; "
          f"batch {args.batch_size} x {args.seq_len} = {tokens_per_step} tokens/step; "
          f"{flops_per_token / 1e9:.3f} GFLOP/token")

    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    tokens_per_s, mfus = [], []
    for step in range(args.warmup + args.steps):
        # Synthetic tokens: a fresh batch each step, targets the next token.
        data = torch.randint(0, args.vocab, (args.batch_size, args.seq_len + 1), device=device, generator=gen)
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            loss = step_fn_model(data[:, :-1], data[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rate = tokens_per_step / seconds
        mfu = rate * flops_per_token / PEAK_BF16_FLOPS
        timed = step >= args.warmup
        if timed:
            tokens_per_s.append(rate)
            mfus.append(mfu)
        print(f"step {step:3d}{'' if timed else ' (warm-up)'}: loss {loss.item():.4f}, "
              f"{seconds * 1e3:8.1f} ms, {rate:10.0f} tokens/s, MFU {100 * mfu:5.1f}%")
    print(f"median over {args.steps} timed steps: {statistics.median(tokens_per_s):.0f} tokens/s, "
          f"MFU {100 * statistics.median(mfus):.1f}% (of {PEAK_BF16_FLOPS / 1e12:.0f} TFLOP/s bf16)")


if __name__ == "__main__":
    main()
