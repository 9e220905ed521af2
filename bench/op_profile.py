"""Where LiteRT's time goes, per operator: our deployable INT8 TFLite beside YOLOv8n's, by operator type and by the
feature-map stride each operator writes (issue 26 item 1).

LiteRT's Python interpreter has no per-operator profiler, so the profile is taken by prefixes: for each k the file
is cut after its k-th operator (the operators run in file order; the cut model's output is that operator's) and
timed at 1 thread. Operator k's time is the prefix-k median minus the prefix-(k-1) median, every prefix timed in
`--passes` passes that alternate over all prefixes, so drift on the machine reaches every operator alike.

The prefixes run on LiteRT's builtin kernels, one operator after another (the interpreter without its default
XNNPACK delegate), where prefix times add up. Under XNNPACK, which LiteRT applies by default and which the deployed
file runs with, the delegate plans and fuses the whole graph (a PAD folded into the convolution after it, say), so
a prefix is not the same computation as the front of the whole file, and differences came out below zero for whole
operator types: that mode is timed for the whole file only, beside the builtin kernels' whole-file time. Single
differences are noisy; the sums by type and stride are the figures to read.

Files: `leafyolo_u-p30` is the deployable architecture (30 % pruned), nc=80, random weights (time depends on
shapes, not values), both converted by the pipeline's onnx2tf path (bench.deploy_compare's builders) with per-tensor
weight scales, not stripped (the prefixes are cut from the converted file).

    python -m bench.op_profile [--sizes 320] [--models leafyolo_u-p30 yolov8n] [--passes 5] [--runs 10]
        [--work DIR] [--out bench/results/op_profile.md]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.stamp import stamp, write_report

REFERENCE = "yolov8n"


def converted(name: str, imgsz: int, calib: np.ndarray, work: Path) -> Path:
    """`name` at `imgsz` as a full-INT8 TFLite (per-tensor), in `work/name-imgsz/int8.tflite` (reused when there)."""
    from bench.deploy_compare import build_fp32
    from pipeline.export.tflite_export import export_tflite_int8

    d = work / f"{name}-{imgsz}"
    d.mkdir(parents=True, exist_ok=True)
    tflite = d / "int8.tflite"
    if not tflite.is_file():
        build_fp32(name, imgsz, 80, d / "fp32.onnx")
        export_tflite_int8(d / "fp32.onnx", d, calib, out_path=tflite, keep_float32=False)
    return tflite


def stride_of(shape: list[int], size: int) -> str:
    """'/8' for a 4-D output at 1/8 of the input's resolution (a padded copy counts as its input's), 'global' for a
    1x1 map of a pooled gate, 'flat' for the head's reshaped and concatenated outputs."""
    if len(shape) != 4:
        return "flat"
    if shape[1] == 1 and size > 32:
        return "global"
    return f"/{2 ** round(math.log2(size / shape[1]))}"


def operators(path: Path) -> list[dict[str, Any]]:
    """Each operator in run order: its type, output shape and (4-D outputs) output stride against the input."""
    from pipeline.export.tflite_size import operator_names
    from pipeline.io.tflite_file import read_model

    model = read_model(path)
    graph = model.subgraphs[0]
    size = int(graph.tensors[graph.inputs[0]].shape[1])
    out = []
    for op, name in zip(graph.operators, operator_names(model)):
        shape = [int(s) for s in graph.tensors[op.outputs[0]].shape]
        out.append({"type": name, "shape": shape, "stride": stride_of(shape, size),
                    "channels": shape[-1] if len(shape) == 4 else None})
    return out


def prefixes(path: Path) -> list[bytes]:
    """The file cut after each of its operators (k = 1..N), each with that operator's first output as its output."""
    from pipeline.io.tflite_file import read_model, write_model

    model = read_model(path)
    graph = model.subgraphs[0]
    ops, outputs = list(graph.operators), graph.outputs
    cut = []
    try:
        for k in range(1, len(ops) + 1):
            graph.operators, graph.outputs = ops[:k], np.array([ops[k - 1].outputs[0]], dtype=np.int32)
            cut.append(write_model(model))
    finally:
        graph.operators, graph.outputs = ops, outputs
    return cut


def interpreter(content: bytes, xnnpack: bool = False):
    """A 1-thread LiteRT interpreter on the file's bytes, with an int8 input set: builtin kernels one operator after
    another, or (`xnnpack`) LiteRT's default, the XNNPACK delegate over the whole graph."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_content=content, num_threads=1, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.random.default_rng(0).integers(-128, 128, d["shape"], dtype=np.int8))
    return it


def median_ms(it, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def profile(path: Path, passes: int, runs: int) -> dict[str, Any]:
    """Per-operator ms on the builtin kernels (prefix differences of medians over passes), and the whole file's
    median ms on the builtin kernels and under XNNPACK (LiteRT's default, as deployed)."""
    ops = operators(path)
    its = [interpreter(c) for c in prefixes(path)]
    whole = {"whole_ms": interpreter(path.read_bytes()), "xnnpack_ms": interpreter(path.read_bytes(), xnnpack=True)}
    for it in [*its, *whole.values()]:  # warm-up: first invokes pack weights and plan memory
        it.invoke()
    timed: list[list[float]] = [[] for _ in its]
    whole_ms: dict[str, list[float]] = {k: [] for k in whole}
    for _ in range(passes):
        for i, it in enumerate(its):
            timed[i].append(median_ms(it, runs))
        for k, it in whole.items():
            whole_ms[k].append(median_ms(it, runs))
    cumulative = [statistics.median(t) for t in timed]
    for i, op in enumerate(ops):
        op["ms"] = cumulative[i] - (cumulative[i - 1] if i else 0.0)
    return {"ops": ops, "total_ms": cumulative[-1], **{k: statistics.median(v) for k, v in whole_ms.items()}}


def grouped(ops: list[dict[str, Any]], key: str) -> dict[Any, dict[str, float]]:
    out: dict[Any, dict[str, float]] = {}
    for op in ops:
        g = out.setdefault(op[key], {"ms": 0.0, "count": 0})
        g["ms"] += op["ms"]
        g["count"] += 1
    return out


def tables(results: dict[str, dict[int, dict[str, Any]]], sizes: list[int]) -> list[str]:
    lines: list[str] = []
    for imgsz in sizes:
        at = {name: r[imgsz] for name, r in results.items()}
        ref = at.get(REFERENCE)
        lines += [f"## {imgsz} px", "", "| model | operators | profile total ms (builtin) | whole file ms (builtin) | "
                  "x YOLOv8n (builtin) | whole file ms (XNNPACK, as deployed) | x YOLOv8n (XNNPACK) |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name, p in at.items():
            ratio = f"{p['whole_ms'] / ref['whole_ms']:.2f}" if ref else "-"
            xratio = f"{p['xnnpack_ms'] / ref['xnnpack_ms']:.2f}" if ref else "-"
            lines.append(f"| `{name}` | {len(p['ops'])} | {p['total_ms']:.2f} | {p['whole_ms']:.2f} | {ratio} | "
                         f"{p['xnnpack_ms']:.2f} | {xratio} |")
        for key, title in (("type", "operator type"), ("stride", "output stride (feature-map resolution)")):
            groups = {name: grouped(p["ops"], key) for name, p in at.items()}
            keys = sorted({k for g in groups.values() for k in g}, key=lambda k: (
                -max(g.get(k, {"ms": 0})["ms"] for g in groups.values()) if key == "type"
                else (k[0] != "/", int(k[1:]) if k[0] == "/" else 0, k)))
            lines += ["", f"By {title}: ms (share of the profile total), operators.", "",
                      f"| {key} | " + " | ".join(f"`{n}`" for n in at) + " |", "|---|" + "---:|" * len(at)]
            for k in keys:
                cells = []
                for name, p in at.items():
                    g = groups[name].get(k)
                    cells.append("-" if g is None else f"{g['ms']:.2f} ({g['ms'] / p['total_ms']:.0%}), {g['count']}")
                lines.append(f"| {k} | " + " | ".join(cells) + " |")
        for name, p in at.items():
            top = sorted(enumerate(p["ops"]), key=lambda t: -t[1]["ms"])[:10]
            lines += ["", f"Top 10 operators of `{name}` at {imgsz} px:", "",
                      "| # | type | output shape | ms | share |", "|---:|---|---|---:|---:|"]
            lines += [f"| {i} | {op['type']} | {'x'.join(map(str, op['shape']))} | {op['ms']:.3f} | "
                      f"{op['ms'] / p['total_ms']:.1%} |" for i, op in top]
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[320])
    parser.add_argument("--models", nargs="+", default=["leafyolo_u-p30", REFERENCE])
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--work", default="", help="keep the converted files here (reused on a re-run)")
    parser.add_argument("--out", default="bench/results/op_profile.md")
    args = parser.parse_args()
    from bench.deploy_compare import MODELS, calibration_images

    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"--models: {unknown} unknown; one of {sorted(MODELS)}")
    if args.passes < 1 or args.runs < 1 or any(s % 32 or s < 32 for s in args.sizes):
        parser.error("--passes and --runs must be >= 1, --sizes multiples of 32")
    if any(MODELS[m][0] == "ultralytics" for m in args.models):
        from bench.ultralytics_env import bench_python

        bench_python()  # fails here, naming the fix, when the bench environment is missing
    header = stamp()
    results: dict[str, dict[int, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="op_profile_") as tmp:
        work = Path(args.work or tmp)
        for imgsz in args.sizes:
            calib = calibration_images(imgsz, 32, work)
            for name in args.models:
                print(f"[op_profile] {name} at {imgsz} px", flush=True)
                results.setdefault(name, {})[imgsz] = profile(converted(name, imgsz, calib, work), args.passes,
                                                              args.runs)
    lines = ["# Where LiteRT's time goes: per-operator profile", "", header, "",
             f"LiteRT, 1 thread, INT8 input. Per-operator ms from prefix medians on the builtin kernels, one operator "
             f"after another ({args.passes} alternating passes of {args.runs} runs each); XNNPACK, LiteRT's default "
             "and the deployed mode, fuses the whole graph, so it is timed for the whole file only (see "
             "bench/op_profile.py). Random weights, nc=80, per-tensor weight scales, the pipeline's onnx2tf path. "
             "Single operators are noisy; read the sums.", "", *tables(results, args.sizes)]
    write_report(args.out, lines, {n: {str(s): p for s, p in r.items()} for n, r in results.items()})


if __name__ == "__main__":
    main()
