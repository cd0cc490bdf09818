#!/usr/bin/env python3
"""Loss against bytes: the table and the chart of run_loss_vs_bytes.sh's runs.

Usage: make_loss_vs_bytes.py RUN_DIR SVG_OUT [TABLE_OUT]

Reads RUN_DIR/<model>__<mode>.jsonl (the trainer's metrics: per step
`dp_bytes_sent`, the bytes this rank put on the data-parallel wire, native
collectives counted as ring algorithms send them; validation lines
`{"step", "val_loss"}`), and writes
  - a Markdown table (stdout, and TABLE_OUT if given): per model and mode the
    final validation loss, its difference from uncompressed sync DP, total
    bytes sent per rank over the run and the mean per step, and the ratio to
    uncompressed;
  - an SVG chart: x = bytes per step per rank (log scale), y = final
    validation loss, one point per mode, one colour per model.
Only the Python standard library is used.
"""

import json
import math
import os
import sys

MODES = [
    ("none", "none (sync, fp32)"),
    ("bf16", "bf16"),
    ("fp16", "fp16 (dynamic scaling)"),
    ("int8", "int8"),
    ("topk_1pct", "Top-K 1%"),
    ("topk_adaptive", "Top-K adaptive"),
    ("powersgd_r4", "PowerSGD rank 4"),
    ("local_sgd_h4", "local SGD, H = 4"),
    ("gossip", "gossip (ring, 1/3)"),
    ("none_seed4321", "none, seed 4321"),
]
MODELS = [("default", "default (4 layers, 0.84 M)", "#1f77b4"),
          ("8layer", "8 layers (1.6 M)", "#d62728")]


def read_run(path):
    steps, bytes_sent, val = 0, 0, None
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if "val_loss" in record:
                val = (record["step"], record["val_loss"])
            elif "loss" in record:
                steps += 1
                bytes_sent += record.get("dp_bytes_sent", 0)
    if val is None or steps == 0:
        raise ValueError(f"{path}: no validation loss or no steps")
    if not math.isfinite(val[1]):
        raise ValueError(f"{path}: validation loss {val[1]}")
    return {"steps": steps, "total_bytes": bytes_sent,
            "bytes_per_step": bytes_sent / steps, "val_step": val[0], "val_loss": val[1]}


def load(run_dir):
    runs = {}
    for model, _, _ in MODELS:
        for mode, _ in MODES:
            path = os.path.join(run_dir, f"{model}__{mode}.jsonl")
            if os.path.exists(path):
                runs[(model, mode)] = read_run(path)
    return runs


def table(runs):
    lines = ["| model | mode | validation loss | vs none | bytes per rank, total | "
             "per step | fewer bytes than none |",
             "|---|---|---|---|---|---|---|"]
    for model, model_label, _ in MODELS:
        base = runs.get((model, "none"))
        for mode, label in MODES:
            run = runs.get((model, mode))
            if run is None:
                continue
            delta = ratio = "-"
            if base is not None:
                d = run["val_loss"] - base["val_loss"]
                delta = f"{d:+.4f}" if abs(d) >= 5e-5 or d == 0 else f"{d:+.1e}"
                ratio = (f"{base['total_bytes'] / run['total_bytes']:.1f}x"
                         if run["total_bytes"] > 0 else "-")
            lines.append(f"| {model_label} | {label} | {run['val_loss']:.4f} | {delta} | "
                         f"{run['total_bytes']:,} | {run['bytes_per_step']:,.0f} | {ratio} |")
    return "\n".join(lines) + "\n"


def svg(runs):
    width, height = 900, 560
    left, right, top, bottom = 80, 250, 50, 70
    points = [r for r in runs.values() if r["bytes_per_step"] > 0]
    xs = [math.log10(r["bytes_per_step"]) for r in points]
    ys = [r["val_loss"] for r in points]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs))
    if x1 == x0:
        x1 += 1
    pad = 0.05 * (max(ys) - min(ys) or 1)
    y0, y1 = min(ys) - pad, max(ys) + pad

    def px(b):
        return left + (math.log10(b) - x0) / (x1 - x0) * (width - left - right)

    def py(v):
        return top + (y1 - v) / (y1 - y0) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="25" font-size="15">Validation loss against data-parallel '
           'bytes per step (dp = 4, 300 steps, Brown corpus)</text>']
    for e in range(x0, x1 + 1):
        x = left + (e - x0) / (x1 - x0) * (width - left - right)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{height - bottom + 18}" text-anchor="middle">'
                   f'1e{e}</text>')
    ticks = 6
    for i in range(ticks + 1):
        v = y0 + (y1 - y0) * i / ticks
        y = py(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{v:.3f}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" '
               f'height="{height - top - bottom}" fill="none" stroke="black"/>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 25}" '
               'text-anchor="middle">bytes sent per rank per step (log scale)</text>')
    out.append(f'<text x="20" y="{(top + height - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 20 {(top + height - bottom) / 2})">final validation '
               'loss</text>')
    # Labels of nearby points (bf16 and fp16 share a byte count) are moved
    # down until they no longer overlap one placed before.
    placed = []

    def free_spot(x, y, text):
        w, h = 5.5 * len(text), 11
        while any(abs(x - px_) < max(w, pw) and abs(y - py_) < h for px_, py_, pw in placed):
            y += h
        placed.append((x, y, w))
        return y

    for model, model_label, colour in MODELS:
        for mode, label in MODES:
            run = runs.get((model, mode))
            if run is None or run["bytes_per_step"] <= 0:
                continue
            x, y = px(run["bytes_per_step"]), py(run["val_loss"])
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                       f'<title>{model_label}, {label}: {run["val_loss"]:.4f}, '
                       f'{run["bytes_per_step"]:,.0f} B/step</title></circle>')
            ly = free_spot(x + 6, y - 5, label)
            out.append(f'<text x="{x + 6:.1f}" y="{ly:.1f}" font-size="10" '
                       f'fill="{colour}">{label}</text>')
    ly = top + 10
    for model, model_label, colour in MODELS:
        out.append(f'<circle cx="{width - right + 20}" cy="{ly}" r="4" fill="{colour}"/>')
        out.append(f'<text x="{width - right + 30}" y="{ly + 4}">{model_label}</text>')
        ly += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    runs = load(sys.argv[1])
    if not runs:
        sys.exit(f"no runs in {sys.argv[1]}")
    text = table(runs)
    sys.stdout.write(text)
    if len(sys.argv) == 4:
        with open(sys.argv[3], "w") as f:
            f.write(text)
    with open(sys.argv[2], "w") as f:
        f.write(svg(runs))


if __name__ == "__main__":
    main()
