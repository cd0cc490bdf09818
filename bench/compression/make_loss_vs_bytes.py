#!/usr/bin/env python3
"""Loss against bytes: the table and the chart of run_loss_vs_bytes.sh's runs.

Usage: make_loss_vs_bytes.py [--previous=TABLE_MD] RUN_DIR SVG_OUT [TABLE_OUT]

Reads RUN_DIR/<model>__<mode>.jsonl (the trainer's metrics: per step
`dp_bytes_sent`, the bytes this rank put on the data-parallel wire, native
collectives counted as ring algorithms send them; validation lines
`{"step", "val_loss"}`), and writes
  - a Markdown table (stdout, and TABLE_OUT if given): per model and mode the
    final validation loss, its difference from uncompressed sync DP, total
    bytes sent per rank over the run and the mean per step, and the ratio to
    uncompressed;
  - an SVG chart: x = bytes per step per rank (log scale), y = final
    validation loss, one marker shape per mode and one colour per model, in
    two panels: every point, and a zoom on those within 0.06 of the best.
--previous=TABLE_MD (e.g. README.md) adds the rows of an earlier table of
this script for the (model, mode) pairs RUN_DIR has no run of, so that new
modes can be run alone and drawn with the old ones: their validation loss is
the table's (4 decimals), their bytes exact.
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
    ("ps_s0", "parameter server, S = 0"),
    ("ps_s2", "parameter server, S = 2"),
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


def load_previous(path, runs):
    """Adds the rows of an earlier table for pairs `runs` lacks."""
    model_of = {label: model for model, label, _ in MODELS}
    mode_of = {label: mode for mode, label in MODES}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 7 or cells[0] not in model_of or cells[1] not in mode_of:
                continue
            key = (model_of[cells[0]], mode_of[cells[1]])
            if key in runs:
                continue
            total = int(cells[4].replace(",", ""))
            per_step = float(cells[5].replace(",", ""))
            runs[key] = {"steps": round(total / per_step), "total_bytes": total,
                         "bytes_per_step": per_step, "val_step": None,
                         "val_loss": float(cells[2])}


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


# One marker shape per mode (the legend names them), one colour per model.
SHAPES = ["circle", "square", "diamond", "triangle", "down", "cross", "plus", "star",
          "hexagon", "ring", "open_square", "open_diamond"]


def marker(shape, x, y, colour, title):
    r = 5
    tip = f"<title>{title}</title>"
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}">{tip}</circle>'
    if shape == "ring":
        return (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="none" stroke="{colour}" '
                f'stroke-width="2">{tip}</circle>')
    if shape in ("open_square", "open_diamond"):
        if shape == "open_square":
            d = f"M{x - r},{y - r}L{x + r},{y - r}L{x + r},{y + r}L{x - r},{y + r}Z"
        else:
            q = 1.3 * r
            d = f"M{x},{y - q}L{x + q},{y}L{x},{y + q}L{x - q},{y}Z"
        return f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2">{tip}</path>'
    if shape == "square":
        return (f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" '
                f'fill="{colour}">{tip}</rect>')
    if shape in ("cross", "plus"):
        if shape == "cross":
            d = f"M{x - r},{y - r}L{x + r},{y + r}M{x - r},{y + r}L{x + r},{y - r}"
        else:
            d = f"M{x - r},{y}L{x + r},{y}M{x},{y - r}L{x},{y + r}"
        return f'<path d="{d}" stroke="{colour}" stroke-width="2.5">{tip}</path>'
    corners = {
        "diamond": [(0, -1.3), (1.3, 0), (0, 1.3), (-1.3, 0)],
        "triangle": [(0, -1.2), (1.1, 0.9), (-1.1, 0.9)],
        "down": [(0, 1.2), (1.1, -0.9), (-1.1, -0.9)],
        "star": [(math.cos(math.pi / 2 + k * math.pi / 5) * (1.4 if k % 2 == 0 else 0.6),
                  -math.sin(math.pi / 2 + k * math.pi / 5) * (1.4 if k % 2 == 0 else 0.6))
                 for k in range(10)],
        "hexagon": [(math.cos(k * math.pi / 3) * 1.1, math.sin(k * math.pi / 3) * 1.1)
                    for k in range(6)],
    }[shape]
    pts = " ".join(f"{x + r * cx:.1f},{y + r * cy:.1f}" for cx, cy in corners)
    return f'<polygon points="{pts}" fill="{colour}">{tip}</polygon>'


def panel(runs, box, y_range, x_range, heading):
    """One scatter panel: box = (left, top, width, height) in pixels."""
    left, top, width, height = box
    x0, x1 = x_range
    y0, y1 = y_range

    def px(b):
        return left + (math.log10(b) - x0) / (x1 - x0) * width

    def py(v):
        return top + (y1 - v) / (y1 - y0) * height

    out = [f'<text x="{left}" y="{top - 8}" font-size="12">{heading}</text>']
    for e in range(x0, x1 + 1):
        x = left + (e - x0) / (x1 - x0) * width
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height}" '
                   'stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + height + 16}" text-anchor="middle">'
                   f'1e{e}</text>')
    ticks = 5
    for i in range(ticks + 1):
        v = y0 + (y1 - y0) * i / ticks
        y = py(v)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.3f}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" '
               'stroke="black"/>')
    for model, model_label, colour in MODELS:
        for (mode, label), shape in zip(MODES, SHAPES):
            run = runs.get((model, mode))
            if run is None or run["bytes_per_step"] <= 0:
                continue
            if not y0 <= run["val_loss"] <= y1:
                continue
            out.append(marker(shape, px(run["bytes_per_step"]), py(run["val_loss"]), colour,
                              f'{model_label}, {label}: {run["val_loss"]:.4f}, '
                              f'{run["bytes_per_step"]:,.0f} B/step'))
    return out


def svg(runs):
    width, height = 960, 820
    left, plot_w, legend_x = 80, 600, 720
    points = [r for r in runs.values() if r["bytes_per_step"] > 0]
    xs = [math.log10(r["bytes_per_step"]) for r in points]
    ys = sorted(r["val_loss"] for r in points)
    x_range = (math.floor(min(xs)), max(math.ceil(max(xs)), math.floor(min(xs)) + 1))
    pad = 0.05 * (ys[-1] - ys[0] or 1)
    full = (ys[0] - pad, ys[-1] + pad)
    # The zoom holds every point within 0.06 of the best loss: the modes that
    # nearly match uncompressed training, which the full range squeezes.
    near = [y for y in ys if y <= ys[0] + 0.06]
    zpad = 0.05 * (near[-1] - near[0] or 0.01)
    zoom = (near[0] - zpad, near[-1] + zpad)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{left}" y="24" font-size="15">Final validation loss against '
           'data-parallel bytes per step per rank</text>',
           f'<text x="{left}" y="42" font-size="11">dp = 4, 300 steps of 8 x 128 tokens, '
           'Brown corpus, local backend; bytes: the metrics\' dp_bytes_sent</text>']
    out += panel(runs, (left, 75, plot_w, 300), full, x_range, "all modes")
    out += panel(runs, (left, 440, plot_w, 300), zoom, x_range,
                 f"zoom: losses within 0.06 of the best ({len(near)} of {len(ys)} points)")
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 30}" text-anchor="middle">bytes '
               'sent per rank per step (log scale)</text>')
    out.append(f'<text x="22" y="{height / 2}" text-anchor="middle" '
               f'transform="rotate(-90 22 {height / 2})">validation loss at the last '
               'step</text>')
    ly = 90
    out.append(f'<text x="{legend_x}" y="{ly}" font-weight="bold">model (colour)</text>')
    for model, model_label, colour in MODELS:
        ly += 20
        out.append(marker("square", legend_x + 6, ly - 4, colour, model_label))
        out.append(f'<text x="{legend_x + 18}" y="{ly}">{model_label}</text>')
    ly += 34
    out.append(f'<text x="{legend_x}" y="{ly}" font-weight="bold">mode (shape)</text>')
    for (mode, label), shape in zip(MODES, SHAPES):
        if not any(m == mode for (_, m) in runs):
            continue
        ly += 20
        out.append(marker(shape, legend_x + 6, ly - 4, "#444", label))
        out.append(f'<text x="{legend_x + 18}" y="{ly}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--previous=")]
    previous = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--previous=")]
    if len(args) not in (2, 3) or len(previous) > 1:
        sys.exit(__doc__)
    runs = load(args[0])
    if not runs:
        sys.exit(f"no runs in {args[0]}")
    if previous:
        load_previous(previous[0], runs)
    text = table(runs)
    sys.stdout.write(text)
    if len(args) == 3:
        with open(args[2], "w") as f:
            f.write(text)
    with open(args[1], "w") as f:
        f.write(svg(runs))


if __name__ == "__main__":
    main()
