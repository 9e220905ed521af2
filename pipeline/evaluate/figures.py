"""Image plots for `dvc plots show`: the final INT8 model's detections drawn on the first val images, and mAP50
(with its 95 % interval) against file size across the chain.

Matplotlib without pyplot (its Agg canvas), its bundled DejaVu Sans and no PNG metadata: the same inputs give
the same PNG bytes, so DVC sees an unchanged plot when nothing it depends on changed."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from pipeline.config.stages import PlotsParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.labels import labels_for, list_images
from pipeline.infer.backends import open_model
from pipeline.infer.predict import PALETTE, predict
from pipeline.io.atomic import atomic_write_bytes
from pipeline.io.jsonio import read_json

DPI = 100
STYLE = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 9, "image.interpolation": "nearest"}


def save_png(fig: Figure, path: str | Path) -> int:
    """Write `fig` as a PNG without the Software/date metadata (atomically); returns its size in bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    return buf.tell()


def _need(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found; run the stage that writes it first")
    return path


def _rgb(i: int) -> tuple[float, float, float]:
    r, g, b = PALETTE[i % len(PALETTE)]
    return r / 255, g / 255, b / 255


def predictions_grid(model: str | Path, data_yaml: str | Path, out: str | Path, p: PlotsParams) -> dict[str, Any]:
    """Detections of `model` (any file `open_model` runs) on the first `p.n_images` val images, one panel each,
    boxes with "name score" labels, the ground truth dashed. Returns the counts drawn and the PNG's bytes."""
    cfg = load_data_yaml(_need(data_yaml, "data.yaml"))
    images = list_images(cfg.val)[:p.n_images]
    if not images:
        raise FileNotFoundError(f"{cfg.val}: no val images to draw predictions on")
    backend = open_model(_need(model, "model"))
    dets = predict(backend, [str(i) for i in images], conf_thres=p.conf_thres, iou_thres=p.iou_thres,
                   names=cfg.names)
    cols = min(p.columns, len(images))
    rows = math.ceil(len(images) / cols)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(3 * cols, 3.2 * rows + 0.4), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, path, d in zip(axes, images, dets):
            ax.imshow(d.orig_img)
            h, w = d.orig_img.shape[:2]
            for _, cx, cy, bw, bh in labels_for(path, cfg.nc).tolist():
                ax.add_patch(Rectangle(((cx - bw / 2) * w, (cy - bh / 2) * h), bw * w, bh * h, fill=False,
                                       edgecolor="white", linestyle="--", linewidth=0.8))
            for (x1, y1, x2, y2), score, cls, label in zip(d.boxes.tolist(), d.scores.tolist(), d.classes.tolist(),
                                                          d.labels):
                color = _rgb(int(cls))
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=1.5))
                ax.text(x1, y1, f"{label} {score:.2f}", color="white", fontsize=6.5, va="bottom", clip_on=True,
                        bbox={"facecolor": color, "edgecolor": "none", "pad": 1})
            ax.set_title(f"{path.name}: {len(d)} detections")
        for ax in axes:
            ax.set_axis_off()
        fig.suptitle(f"{Path(model).name} on the first {len(images)} val images (score >= {p.conf_thres:g}, "
                     f"NMS IoU {p.iou_thres:g}; dashed: ground truth)")
        size = save_png(fig, out)
    return {"images": len(images), "detections": sum(len(d) for d in dets), "bytes": size}


def size_map_chart(size_plot: str | Path, eval_metrics: str | Path, out: str | Path) -> dict[str, Any]:
    """mAP50 against file size, one labelled point per artifact of `size_plot` (the evaluate stage's
    map_vs_size.json), with the 95 % interval from `eval_metrics` where the evaluate stage computed one."""
    points = read_json(_need(size_plot, "mAP-vs-size data"))
    figures = read_json(_need(eval_metrics, "evaluate metrics")).get("artifacts", {})
    if not isinstance(points, list) or not points:
        raise ValueError(f"{size_plot}: expected a non-empty list of {{artifact, size_bytes, map50}} records")
    for i, pt in enumerate(points):
        missing = {"artifact", "size_bytes", "map50"} - set(pt)
        if missing:
            raise ValueError(f"{size_plot}: record {i} lacks {sorted(missing)}; expected artifact, size_bytes, map50")
    points = sorted(points, key=lambda pt: pt["size_bytes"])
    span = max(pt["size_bytes"] for pt in points) / 1e6 - min(pt["size_bytes"] for pt in points) / 1e6 or 1.0
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")
        ax = fig.add_subplot()
        placed: list[tuple[float, float]] = []
        for i, pt in enumerate(points):
            x, y = pt["size_bytes"] / 1e6, pt["map50"]
            f = figures.get(pt["artifact"], {})
            lo, hi = f.get("map50_ci_low", y), f.get("map50_ci_high", y)
            ax.errorbar([x], [y], yerr=[[y - lo], [hi - y]], fmt="o", color=_rgb(i), capsize=3)
            near = sum(abs(x - px) < 0.08 * span and abs(y - py) < 0.03 for px, py in placed)  # labels stack down
            placed.append((x, y))
            ax.annotate(pt["artifact"], (x, y), textcoords="offset points", xytext=(6, 5 - 13 * near), fontsize=8)
        ax.set_xlabel("file size (MB, 10^6 bytes)")
        ax.set_ylabel("mAP50 on the val split (95 % interval)")
        ax.set_title("mAP50 vs file size across the chain")
        ax.grid(True, alpha=0.3)
        ax.margins(x=0.12, y=0.2)
        size = save_png(fig, out)
    return {"points": len(points), "bytes": size}
