#!/usr/bin/python3
"""An independent GPT-2 in PyTorch, the reference the C++ model is checked against.

Written for this project from the GPT-2 architecture (pre-LayerNorm blocks,
learned positions, tanh-GELU MLP, final LayerNorm, head tied to the token
embedding). It shares no code with the C++ side: weights come in as a
safetensors file with Hugging Face GPT-2 names, results go out the same way.

  gpt2_reference.py --weights model.safetensors --batches batches.safetensors \
      --out result.safetensors [--steps 10 --lr 1e-3 ...]

The model configuration is read from the weights file's __metadata__ (n_layer,
n_head, n_embd, n_inner, vocab_size, n_positions, layer_norm_epsilon).
`batches` holds int32/int64 tensors "inputs" and "targets" of shape
[steps, batch, seq]; targets equal to --ignore_index do not count in the loss.

The result file holds: "loss" [steps] (fp32: the loss before each optimizer step),
"logits" [batch, seq, vocab] of the first batch with the initial weights,
"grad/<name>" for every parameter at the first step, and "param/<name>" after
the last step. Computation is in float64 by default, so the reference is the
exact answer to fp32 precision.

Only Debian's python3-torch (1.13) is needed: safetensors is parsed by hand.
"""

import argparse
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F

_DTYPES = {
    "F32": torch.float32,
    "F64": torch.float64,
    "BF16": torch.bfloat16,
    "F16": torch.float16,
    "I32": torch.int32,
    "I64": torch.int64,
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len])
    metadata = header.pop("__metadata__", {})
    data = blob[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(info["shape"]).clone()
    return tensors, metadata


def write_safetensors(path, tensors):
    header = {}
    offset = 0
    payload = []
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        payload.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in payload:
            f.write(raw)


class Gpt2:
    """GPT-2 forward pass over a dict of named parameter tensors."""

    def __init__(self, params, config):
        self.p = params
        self.n_layer = int(config["n_layer"])
        self.n_head = int(config["n_head"])
        self.eps = float(config.get("layer_norm_epsilon", 1e-5))

    def layer_norm(self, x, prefix):
        return F.layer_norm(x, (x.shape[-1],), self.p[prefix + ".weight"],
                            self.p[prefix + ".bias"], self.eps)

    def linear(self, x, prefix):
        # Hugging Face GPT-2 stores Conv1D weights as [in_features, out_features].
        return x @ self.p[prefix + ".weight"] + self.p[prefix + ".bias"]

    def attention(self, x, prefix):
        batch, seq, hidden = x.shape
        head_dim = hidden // self.n_head
        qkv = self.linear(x, prefix + ".c_attn")
        q, k, v = qkv.split(hidden, dim=-1)

        def heads(t):
            return t.view(batch, seq, self.n_head, head_dim).transpose(1, 2)

        q, k, v = heads(q), heads(k), heads(v)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)
        causal = torch.ones(seq, seq, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out = (probs @ v).transpose(1, 2).reshape(batch, seq, hidden)
        return self.linear(out, prefix + ".c_proj")

    def mlp(self, x, prefix):
        h = F.gelu(self.linear(x, prefix + ".c_fc"), approximate="tanh")
        return self.linear(h, prefix + ".c_proj")

    def logits(self, tokens):
        seq = tokens.shape[1]
        x = self.p["wte.weight"][tokens] + self.p["wpe.weight"][:seq]
        for i in range(self.n_layer):
            x = x + self.attention(self.layer_norm(x, f"h.{i}.ln_1"), f"h.{i}.attn")
            x = x + self.mlp(self.layer_norm(x, f"h.{i}.ln_2"), f"h.{i}.mlp")
        x = self.layer_norm(x, "ln_f")
        return x @ self.p["wte.weight"].t()


def decays(name):
    """Weight decay applies to matrices and embeddings, not biases or LayerNorm."""
    return name.endswith(".weight") and ".ln_" not in name and not name.startswith("ln_f")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--batches", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--lr", type=str, default="1e-3",
                        help="one learning rate, or a comma list with one per step")
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--beta2", type=float, default=0.95)
    parser.add_argument("--adam_eps", type=float, default=1e-8)
    parser.add_argument("--weight_decay", type=float, default=0.1)
    parser.add_argument("--grad_clip", type=float, default=0.0, help="0 turns clipping off")
    parser.add_argument("--ignore_index", type=int, default=-1)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = parser.parse_args(argv)

    dtype = getattr(torch, args.dtype)
    weights, config = read_safetensors(args.weights)
    batches, _ = read_safetensors(args.batches)
    inputs = batches["inputs"].long()
    targets = batches["targets"].long()
    if inputs.shape[0] < args.steps:
        sys.exit(f"batches has {inputs.shape[0]} steps, --steps={args.steps}")
    lrs = [float(x) for x in args.lr.split(",")]
    if len(lrs) == 1:
        lrs = lrs * args.steps
    if len(lrs) != args.steps:
        sys.exit(f"--lr lists {len(lrs)} values for {args.steps} steps")

    params = {k: v.to(dtype).requires_grad_(True) for k, v in weights.items()}
    model = Gpt2(params, config)
    names = sorted(params)
    optimizer = torch.optim.AdamW(
        [{"params": [params[n] for n in names if decays(n)], "weight_decay": args.weight_decay},
         {"params": [params[n] for n in names if not decays(n)], "weight_decay": 0.0}],
        lr=lrs[0], betas=(args.beta1, args.beta2), eps=args.adam_eps)

    result = {}
    losses = []
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lrs[step]
        optimizer.zero_grad(set_to_none=True)
        logits = model.logits(inputs[step])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[step].reshape(-1),
                               ignore_index=args.ignore_index)
        loss.backward()
        losses.append(loss.item())
        if step == 0:
            result["logits"] = logits.detach().float()
            for n in names:
                result["grad/" + n] = params[n].grad.detach().float()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([params[n] for n in names], args.grad_clip)
        optimizer.step()

    result["loss"] = torch.tensor(losses, dtype=torch.float32)
    for n in names:
        result["param/" + n] = params[n].detach().float()
    write_safetensors(args.out, result)


if __name__ == "__main__":
    main(sys.argv[1:])
