"""Stride-2 convolutions without TFLite PAD ops: what it saves in the INT8 TFLite (issue 26 items 2-3), two ways.

PyTorch pads a 3x3 stride-2 convolution by one pixel on every side; TensorFlow's SAME padding on an even input pads
nothing before and one pixel after. onnx2tf keeps PyTorch's numbers by inserting an explicit PAD before each such
convolution: a full copy of the input tensor, one more op to run, and at the stride-4 expansion the largest pair
of tensors alive at once, which sets the microcontroller's tensor arena. Padded (0, 1) on the PyTorch side instead
(same kernels, same parameters, the sampling grid shifted by half a pixel), the convolution converts to one
CONV_2D / DEPTHWISE_CONV_2D with no PAD.

The exact way (pipeline/export/graph_prep.py, rewrite 4): keep PyTorch's padding and give the convolution a
(k+1) x (k+1) kernel with a zero last row and column, which TensorFlow's SAME pads exactly as PyTorch did: same
outputs, no PAD, more multiply-adds. The pipeline does this for the one convolution whose PAD sets the arena
("peak"); "all" widens every stride-2 convolution, "pad" none (the explicit PADs onnx2tf writes otherwise).

Per input size, the deployable architecture (`leafyolo_u`, 30 % pruned, random weights: shapes decide all these
figures) is built each way, exported by the pipeline's ONNX -> onnx2tf INT8 path and stripped as the `tflite`
stage ships it, then measured: PAD ops, TFLM arena (the tflite stage's search), file bytes, and LiteRT INT8 latency
at 1 thread (the files alternate, `--rounds` medians of `--runs` runs each). Accuracy is not measured here: the
widened kernels give the same outputs, but TF-SAME padding changes what the network is trained with, so adopting
it needs the paired training comparison of issue 26 item 2.

    python -m studies.same_pad [--sizes 128 192 320] [--runs 30] [--rounds 5] [--out studies/results/same_pad.md]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.stamp import stamp, write_report

VARIANT, SPARSITY, NC = "leafyolo_u", 0.3, 80


class TFSamePadConv2d(nn.Conv2d):
    """A stride-2 convolution padded as TensorFlow's SAME pads an even input: (k - s) // 2 before, the rest after."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.kernel_size[0] - self.stride[0]
        before = total // 2
        return super().forward(F.pad(x, (before, total - before, before, total - before)))


def tf_same(model: nn.Module) -> int:
    """Swap, in place, every square stride-2 convolution padded k // 2 for a TFSamePadConv2d with the same weights;
    the number swapped."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (type(child) is nn.Conv2d and child.stride == (2, 2) and child.kernel_size[0] == child.kernel_size[1]
                    and child.padding == (child.kernel_size[0] // 2,) * 2):
                new = TFSamePadConv2d(child.in_channels, child.out_channels, child.kernel_size, 2, 0,
                                      groups=child.groups, bias=child.bias is not None)
                new.load_state_dict(child.state_dict())
                setattr(parent, name, new)
                swapped += 1
    return swapped


WAYS = {"pad": ("pytorch", "none"), "peak": ("pytorch", "peak"), "all": ("pytorch", "all"),
        "tf-same": ("tf-same", "none")}  # way -> (padding of the stride-2 convs, graph_prep's `widen`)


def widened(onnx_path: Path, widen: str) -> int:
    """How many convolutions graph_prep's rewrite 4 gives a wider kernel."""
    import onnx

    from pipeline.export.graph_prep import widened_convs

    return len(widened_convs(onnx.load(str(onnx_path)), widen))


def build(way: str, imgsz: int, out: Path, calib) -> dict[str, Any]:
    from pipeline.compress.prune import prune
    from pipeline.export.onnx_export import export_onnx
    from pipeline.export.tflite_export import export_tflite_int8
    from pipeline.export.tflite_size import op_counts, strip_tflite
    from pipeline.model.leafyolo import LeafYOLO

    padding, widen = WAYS[way]
    torch.manual_seed(0)
    model = LeafYOLO(VARIANT, NC).eval()
    swapped = tf_same(model) if padding == "tf-same" else 0
    model = prune(model, SPARSITY, imgsz).model.eval()
    out.mkdir(parents=True, exist_ok=True)
    export_onnx(model, out / "fp32.onnx", imgsz)
    tflite = out / "int8.tflite"
    export_tflite_int8(out / "fp32.onnx", out, calib, out_path=tflite, keep_float32=False, widen=widen)
    strip_tflite(tflite, tflite, calib[:8], micro=False)
    ops = op_counts(tflite)
    return {"swapped": swapped, "widened": widened(out / "fp32.onnx", widen),
            "params": sum(p.numel() for p in model.parameters()), "tflite": str(tflite),
            "bytes": tflite.stat().st_size, "ops": sum(ops.values()), "pad_ops": ops.get("PAD", 0) + ops.get("PADV2", 0)}


def latencies(files: dict[str, str], imgsz: int, runs: int, rounds: int) -> dict[str, list[float]]:
    from pipeline.infer.backends import TFLiteBackend
    from pipeline.infer.latency import measure_latency

    backends = {k: TFLiteBackend(f, num_threads=1) for k, f in files.items()}
    out: dict[str, list[float]] = {k: [] for k in files}
    for _ in range(rounds):  # alternate: drift on the machine reaches both files alike
        for k, b in backends.items():
            out[k].append(measure_latency(b, imgsz, runs=runs, warmup=3)["latency_ms_median"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 320])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="studies/results/same_pad.md")
    args = parser.parse_args()
    if any(s % 32 for s in args.sizes) or args.runs < 1 or args.rounds < 1:
        parser.error("--sizes must be multiples of 32 (every stride-2 input even), --runs and --rounds >= 1")
    from bench.deploy_compare import calibration_images
    from pipeline.infer.tflm import min_arena_bytes

    header = stamp()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="same_pad_") as tmp:
        for imgsz in args.sizes:
            calib = calibration_images(imgsz, 32, Path(tmp))
            built = {w: build(w, imgsz, Path(tmp) / f"{w}-{imgsz}", calib) for w in WAYS}
            ms = latencies({w: b["tflite"] for w, b in built.items()}, imgsz, args.runs, args.rounds)
            for w, b in built.items():
                print(f"[same_pad] {imgsz}px {w}: arena search", flush=True)
                rows.append({"imgsz": imgsz, "way": w, "padding": WAYS[w][0], "widen": WAYS[w][1],
                             **{k: v for k, v in b.items() if k != "tflite"},
                             "arena_bytes": min_arena_bytes(b["tflite"]), "latency_ms": ms[w],
                             "latency_ms_median": statistics.median(ms[w])})
    lines = ["# Stride-2 convolutions without TFLite PAD ops (issue 26)", "", header, "",
             f"`{VARIANT}`, {SPARSITY:.0%} pruned, nc={NC}, random weights (seed 0); full-INT8 TFLite from the "
             "pipeline's onnx2tf path, stripped as the `tflite` stage ships it. Ways: `pad` = PyTorch's (1, 1) "
             "padding around each 3x3 stride-2 convolution converted as onnx2tf does by itself (PAD + VALID "
             "convolution); `peak` = the pipeline's: graph_prep's exact rewrite (a 4x4 kernel with a zero last row "
             "and column, SAME padding, the same outputs) on the one convolution whose PAD set the arena; `all` = "
             "that rewrite on every stride-2 convolution; `tf-same` = TensorFlow's (0, 1) padding in the model "
             "itself (other outputs: needs training). Arena: the smallest TFLM tensor arena that loads and runs the "
             f"file (the tflite stage's search). Latency: LiteRT, 1 thread, median of {args.runs} runs, "
             f"{args.rounds} rounds alternating the files (median of the rounds, and their range).", "",
             "| input | way | convs changed | ops | PAD ops | INT8 TFLite bytes | TFLM arena bytes | arena vs `pad` | "
             "LiteRT ms (range) | latency vs `pad` |", "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    base = {r["imgsz"]: r for r in rows if r["way"] == "pad"}
    for r in rows:
        b = base[r["imgsz"]]
        lines.append(f"| {r['imgsz']} | {r['way']} | {r['swapped'] + r['widened']} | {r['ops']} | {r['pad_ops']} | "
                     f"{r['bytes']:,} | {r['arena_bytes']:,} | {r['arena_bytes'] / b['arena_bytes']:.2f} | "
                     f"{r['latency_ms_median']:.2f} ({min(r['latency_ms']):.2f}-{max(r['latency_ms']):.2f}) | "
                     f"{r['latency_ms_median'] / b['latency_ms_median']:.2f} |")
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
