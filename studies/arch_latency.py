"""Which architecture changes would bring LiteRT latency to 0.35x YOLOv8n's (issue 26 item 2), before any training.

bench/results/op_profile.md says where the time goes: at 320 px the stride-4 and stride-8 feature maps hold most
of it, in depthwise convolutions that do little arithmetic for the memory they move. Each candidate here is
`leafyolo_u` with one such cost removed (or several), pruned as the default run prunes (`prune.sparsity` 0.3,
L2), exported by the pipeline's ONNX -> onnx2tf full-INT8 path and stripped as the `tflite` stage ships it, next
to YOLOv8n through the same path (random weights: latency, size and arena depend on shapes, not weights). Per input
size: parameters, GFLOPs, file bytes, TFLM arena (the tflite stage's search) and LiteRT INT8 latency at 1 thread
(XNNPACK, as deployed), the files alternating over `--rounds` rounds of `--runs` runs; the ratio to YOLOv8n is
taken within each round, and the report gives its median and range over the rounds.

Accuracy is not measured here: a candidate that reaches the target still needs the paired seed comparison the
issue asks for (mAP50 non-inferior, 95 % interval of the difference above -0.01, 3 seeds, default data and BCCD)
before the default changes. Candidates are registered in this process only (`register_candidates`); one adopted
moves to pipeline/model/variants.py.

    python -m studies.arch_latency [--sizes 320 416] [--candidates ...] [--runs 30] [--rounds 7] [--work DIR]
                                   [--out studies/results/arch_latency.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.stamp import stamp, write_report
from pipeline.model.variants import VARIANTS, VariantSpec

BASELINE, REFERENCE, SPARSITY, NC, TARGET = "leafyolo_u", "yolov8n", 0.3, 80, 0.35
_U = VARIANTS[BASELINE]
# name -> (spec, what changes against leafyolo_u)
CANDIDATES: dict[str, tuple[VariantSpec, str]] = {
    "leafyolo_u": (_U, "the default student"),
    "leafyolo_u_s4": (dataclasses.replace(_U, stem_ir=False), "no inverted residual at stride 4"),
    "leafyolo_u_e2": (dataclasses.replace(_U, expand=2.0), "stride-8/16/32 inverted residuals expand 2x, not 3x"),
    "leafyolo_u_n64": (dataclasses.replace(_U, neck_width=64), "neck and shared head 64 wide, not 72"),
    "leafyolo_u_s4e2": (dataclasses.replace(_U, stem_ir=False, expand=2.0), "`_s4` and `_e2`"),
    "leafyolo_u_s4e2n64": (dataclasses.replace(_U, stem_ir=False, expand=2.0, neck_width=64),
                           "`_s4`, `_e2` and `_n64`"),
    "leafyolo_u_s4e2h0": (dataclasses.replace(_U, stem_ir=False, expand=2.0, head_depth=0),
                          "`_s4e2`, and the head's class and box branches taken out (its shared stem kept)"),
    "leafyolo_u_s4e2g0": (dataclasses.replace(_U, depths=(0, 0, 0), neck_depth=0, stem_ir=False, expand=2.0),
                          "`_s4e2`, and every Ghost bottleneck of the backbone and neck taken out"),
    "leafyolo_u_s4e2g0h0": (dataclasses.replace(_U, depths=(0, 0, 0), neck_depth=0, head_depth=0, stem_ir=False,
                                                expand=2.0), "`_s4e2g0` and `_s4e2h0`"),
    "leafyolo_u_s4e2g0h0n64": (dataclasses.replace(_U, depths=(0, 0, 0), neck_depth=0, head_depth=0, stem_ir=False,
                                                   expand=2.0, neck_width=64), "`_s4e2g0h0` and `_n64`"),
    "leafyolo_u_s4e2g0h0w24": (dataclasses.replace(_U, widths=(16, 24, 64, 128, 224), depths=(0, 0, 0), neck_depth=0,
                                                   head_depth=0, stem_ir=False, expand=2.0),
                               "`_s4e2g0h0`, and 24 channels at stride 4, not 32"),
}


def register_candidates() -> None:
    """Make the candidates buildable by name in this process only: as variants, and as deploy_compare models pruned
    as the default run prunes (`prune.sparsity` 0.3, `round_to` 1)."""
    from bench.deploy_compare import MODELS

    for name, (spec, _) in CANDIDATES.items():
        if VARIANTS.setdefault(name, spec) != spec:
            raise ValueError(f"variant {name!r} is already registered with another spec")
        MODELS.setdefault(name, ("ours", (name, SPARSITY, 1)))


def build(name: str, imgsz: int, calib, work: Path) -> dict[str, Any]:
    """`name` (a registered candidate, or an Ultralytics reference) through bench.tflm_arena's conversion: FP32 ONNX,
    full-INT8 TFLite, stripped as the `tflite` stage ships it, in `work/name-imgsz/` (reused when already there)."""
    from bench.tflm_arena import convert

    out = convert(name, imgsz, NC, calib, work)
    return {**out, "bytes": out["tflite"].stat().st_size}


def round_ratios(ms: list[float], ref_ms: list[float]) -> list[float]:
    """Latency over the reference's, round by round (both measured in the same round)."""
    if len(ms) != len(ref_ms) or not ms:
        raise ValueError(f"expected one reference time per round, got {len(ms)} and {len(ref_ms)}")
    return [a / b for a, b in zip(ms, ref_ms)]


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| input | model | change | params (pruned) | GFLOPs | INT8 TFLite bytes | TFLM arena bytes | "
             "LiteRT ms (range) | x YOLOv8n time (range) |", "|---:|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        ratio = r["time_ratio"]
        arena = f"{r['arena_bytes']:,}" if r["arena_bytes"] else "-"
        lines.append(
            f"| {r['imgsz']} | `{r['model']}` | {r['change']} | {r['params']:,} | {r['gflops']:.2f} | "
            f"{r['bytes']:,} | {arena} | {statistics.median(r['latency_ms']):.2f} "
            f"({min(r['latency_ms']):.2f}-{max(r['latency_ms']):.2f}) | "
            f"{statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f}) |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 416])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-arena", action="store_true", help="skip the TFLM arena search")
    parser.add_argument("--work", default="", help="keep the converted files here (reused on a re-run)")
    parser.add_argument("--out", default="studies/results/arch_latency.md")
    args = parser.parse_args()
    if any(s % 32 or s < 64 for s in args.sizes) or args.runs < 1 or args.rounds < 1:
        parser.error("--sizes must be multiples of 32 >= 64, --runs and --rounds >= 1")
    from bench.deploy_compare import calibration_images
    from bench.ultralytics_env import bench_python
    from pipeline.infer.tflm import min_arena_bytes
    from studies.same_pad import latencies  # the files alternate, round by round

    header = stamp()
    bench_python()  # the YOLOv8n reference needs the bench environment: fail before converting anything
    register_candidates()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="arch_latency_") as tmp:
        work = Path(args.work or tmp)
        for imgsz in args.sizes:
            calib = calibration_images(imgsz, 64, work)
            names = [*args.candidates, REFERENCE]
            built = {}
            for i, n in enumerate(names, 1):
                print(f"[arch_latency {imgsz}px {i}/{len(names)}] {n}: FP32 ONNX, onnx2tf INT8", flush=True)
                built[n] = build(n, imgsz, calib, work)
            print(f"[arch_latency {imgsz}px] LiteRT latency, {args.rounds} rounds", flush=True)
            ms = latencies({n: b["tflite"] for n, b in built.items()}, imgsz, args.runs, args.rounds)
            for n in args.candidates:
                print(f"[arch_latency {imgsz}px] {n}: arena search", flush=True)
                b = built[n]
                rows.append({"imgsz": imgsz, "model": n, "change": CANDIDATES[n][1],
                             **{k: v for k, v in b.items() if k != "tflite"},
                             "arena_bytes": None if args.no_arena else min_arena_bytes(b["tflite"]),
                             "latency_ms": ms[n], "reference_ms": ms[REFERENCE],
                             "time_ratio": round_ratios(ms[n], ms[REFERENCE])})
    lines = ["# Architecture candidates against the 0.35x latency target (issue 26)", "", header, "",
             f"Each candidate is `{BASELINE}` with the change named, nc={NC}, random weights (seed 0), "
             f"{SPARSITY:.0%} of its parameters pruned (L2, as `prune.sparsity` {SPARSITY}), full-INT8 TFLite from "
             "the pipeline's onnx2tf path with per-tensor weight scales, stripped as the `tflite` stage ships it. "
             f"`{REFERENCE}` goes through the same path (its own parameters, unpruned). LiteRT (XNNPACK), 1 thread: "
             f"median of {args.runs} runs per round, {args.rounds} rounds alternating the files; the ratio to "
             f"`{REFERENCE}` is taken within each round (median and range over the rounds). Target: "
             f"{TARGET:.2f}x. Arena: the smallest TFLM tensor arena that loads and runs the file. No accuracy here: "
             "see the write-up in docs/studies/arch_latency.md.", ""] + table(rows)
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
