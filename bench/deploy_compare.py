"""Deployable size and speed against Ultralytics YOLOv8n and YOLO11n, at 320 and 416 input, nc=80.

Every model goes through the same path: FP32 ONNX (onnxsim, checker), NNCF INT8 QDQ ONNX, and full-INT8 TFLite via
the pipeline's onnx2tf conversion and stripping (as the `tflite` stage ships it), once per weight-scale granularity
(`--quant-types`, `tflite.quant_type`), calibrated on the same generated images; bytes per parameter counts the
file's weight and bias values (batch norm folded). Ultralytics models are built from their
yaml (random weights: size and speed do not depend on the weights) in the bench environment and exported with the
same graph contract (boxes and scores, decoding and NMS outside). Latency: median of repeated single-thread runs
after a warm-up, LiteRT for TFLite and onnxruntime for ONNX, all measured in this one process, one after the other.
Ratios are against YOLOv8n at the same input size.

    python -m bench.deploy_compare [--sizes 320 416] [--models ...] [--quant-types per-tensor per-channel]
                                   [--runs 50] [--work DIR] [--out bench/results/deploy_compare.md]

`--work DIR` keeps the converted files and reuses them on the next run (only latency is measured again).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.model_table import gflops
from bench.stamp import stamp, write_report
from bench.ultralytics_env import bench_python, finish_onnx, run_side
from pipeline.compress.prune import prune
from pipeline.config.stages import QUANT_TYPES
from pipeline.data.calibration import draw_calibration_images
from pipeline.data.synthetic import generate_dataset
from pipeline.export.onnx_export import export_onnx
from pipeline.export.quantize import quantize_onnx_int8
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.export.tflite_size import size_breakdown, strip_tflite
from pipeline.infer.backends import OnnxBackend, TFLiteBackend
from pipeline.infer.latency import measure_latency
from pipeline.io.jsonio import read_json, write_json
from pipeline.model.leafyolo import LeafYOLO

# name -> (kind, spec): "ours" spec = (variant, sparsity, prune.round_to); "ultralytics" spec = model yaml
MODELS: dict[str, tuple[str, Any]] = {
    "leafyolo_u-p30": ("ours", ("leafyolo_u", 0.3, 1)),
    "leafyolo_u-p30-r8": ("ours", ("leafyolo_u", 0.3, 8)),
    "leafyolo_u": ("ours", ("leafyolo_u", 0.0, 1)),
    "leafyolo_n": ("ours", ("leafyolo_n", 0.0, 1)),
    "leafyolo_s": ("ours", ("leafyolo_s", 0.0, 1)),
    "yolov8n": ("ultralytics", "yolov8n.yaml"),
    "yolo11n": ("ultralytics", "yolo11n.yaml"),
}
REFERENCE = "yolov8n"


def calibration_images(imgsz: int, n: int, work: Path) -> np.ndarray:
    """`n` generated images at `imgsz` (objects scaled like the default dataset), the same for every model."""
    data = work / f"calib-data-{imgsz}"
    if not (data / "data.yaml").is_file():
        scale = imgsz / 192
        generate_dataset(data, n_train=n, n_val=1, imgsz=imgsz, seed=0, min_size=16 * scale, max_size=64 * scale)
    return draw_calibration_images(data / "data.yaml", imgsz, n, seed=0)


def build_fp32(name: str, imgsz: int, nc: int, path: Path) -> dict[str, Any]:
    kind, spec = MODELS[name]
    if kind == "ours":
        variant, sparsity, round_to = spec
        torch.manual_seed(0)
        model = LeafYOLO(variant, nc).eval()
        if sparsity:
            model = prune(model, sparsity, imgsz, round_to=round_to).model.eval()  # as the stage
        export_onnx(model, path, imgsz)
        return {"params": sum(p.numel() for p in model.parameters()), "gflops": gflops(model, imgsz)}
    info = run_side(["export", "--cfg", spec, "--nc", str(nc), "--imgsz", str(imgsz), "--out", str(path)],
                    path.parent / "ultralytics-work")
    finish_onnx(path)
    return {"params": info["params"], "gflops": info["gflops"]}


def convert(name: str, imgsz: int, nc: int, calib: np.ndarray, work: Path, quant_types: list[str]) -> dict[str, Any]:
    d = work / f"{name}-{imgsz}"
    d.mkdir(parents=True, exist_ok=True)
    files = {"onnx_fp32": d / "fp32.onnx", "onnx_int8": d / "int8_qdq.onnx",
             **{f"tflite_{q}": d / f"int8-{q}.tflite" for q in quant_types}}
    meta = d / "meta.json"
    if meta.is_file() and files["onnx_fp32"].is_file():
        info = read_json(meta)
    else:
        info = build_fp32(name, imgsz, nc, files["onnx_fp32"])
        write_json(meta, info)
    if not files["onnx_int8"].is_file():
        quantize_onnx_int8(files["onnx_fp32"], files["onnx_int8"], calib)
    for q in quant_types:
        tflite = files[f"tflite_{q}"]
        if not tflite.is_file():
            export_tflite_int8(files["onnx_fp32"], d, calib, out_path=tflite, keep_float32=False, quant_type=q)
            strip_tflite(tflite, tflite, calib[:8], micro=False)  # bit-identical under LiteRT, as the stage ships it
    return {**info, "files": files}


def measure(files: dict[str, Path], imgsz: int, quant_type: str, runs: int, warmup: int) -> dict[str, float]:
    out = {}
    for key, backend in (("tflite_int8_ms", TFLiteBackend(files[f"tflite_{quant_type}"], num_threads=1)),
                         ("onnx_fp32_ms", OnnxBackend(files["onnx_fp32"], num_threads=1)),
                         ("onnx_int8_ms", OnnxBackend(files["onnx_int8"], num_threads=1))):
        out[key] = measure_latency(backend, imgsz, runs=runs, warmup=warmup)["latency_ms_median"]
    return out


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | input | weight scales | params | GFLOPs | INT8 TFLite bytes | bytes per param | x YOLOv8n size | "
             "LiteRT INT8 ms (1 thread) | x YOLOv8n time | ORT FP32 ms | ORT INT8 ms | FP32 ONNX bytes |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['imgsz']} | {r['quant_type']} | {r['params']:,} | {r['gflops']:.2f} | "
                     f"{r['tflite_bytes']:,} | {r['bytes_per_param']:.3f} | "
                     f"{r['size_ratio']:.2f} | {r['tflite_int8_ms']:.1f} | {r['time_ratio']:.2f} | "
                     f"{r['onnx_fp32_ms']:.1f} | {r['onnx_int8_ms']:.1f} | {r['onnx_fp32_bytes']:,} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[320, 416])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--quant-types", nargs="+", default=list(QUANT_TYPES), choices=QUANT_TYPES)
    parser.add_argument("--nc", type=int, default=80)
    parser.add_argument("--calib", type=int, default=64, help="calibration images")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--work", default=None)
    parser.add_argument("--out", default="bench/results/deploy_compare.md")
    args = parser.parse_args()
    header = stamp()  # the commit whose code runs, before the long work
    if any(MODELS[m][0] == "ultralytics" for m in args.models):
        bench_python()  # fail before converting our models when the bench environment is missing
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        n = len(args.models) * len(args.sizes)
        built = []
        for imgsz in args.sizes:
            calib = calibration_images(imgsz, args.calib, work)
            for name in args.models:
                print(f"[deploy {len(built) + 1}/{n}] {name} @ {imgsz}: FP32 ONNX, NNCF INT8, onnx2tf INT8", flush=True)
                built.append((name, imgsz, convert(name, imgsz, args.nc, calib, work, args.quant_types)))
        for i, (name, imgsz, info) in enumerate(built, 1):
            for q in args.quant_types:
                print(f"[latency {i}/{n}] {name} @ {imgsz}, {q}", flush=True)
                files = info["files"]
                size = size_breakdown(files[f"tflite_{q}"])
                rows.append({"model": name, "imgsz": imgsz, "quant_type": q, "params": info["params"],
                             "gflops": info["gflops"], "tflite_bytes": size["total"],
                             "bytes_per_param": size["bytes_per_param"], "tflite_params": size["params"],
                             "onnx_fp32_bytes": files["onnx_fp32"].stat().st_size,
                             "onnx_int8_bytes": files["onnx_int8"].stat().st_size,
                             **measure(files, imgsz, q, args.runs, args.warmup)})
    for r in rows:
        ref = next((x for x in rows if x["model"] == REFERENCE and x["imgsz"] == r["imgsz"]
                    and x["quant_type"] == r["quant_type"]), r)
        r["size_ratio"] = r["tflite_bytes"] / ref["tflite_bytes"]
        r["time_ratio"] = r["tflite_int8_ms"] / ref["tflite_int8_ms"]
    lines = ["# Deployable size and speed vs Ultralytics", "", header, "",
             f"nc={args.nc}, random weights, {args.calib} generated calibration images; latency = median of "
             f"{args.runs} single-thread runs after {args.warmup} warm-up runs. `leafyolo_u-p30` is the deployable "
             "architecture (leafyolo_u with 30% of its parameters pruned, as `prune.sparsity=0.3`); `-r8`: pruned with "
             "`prune.round_to=8` (every pruned group a multiple of 8 channels). TFLite files "
             "stripped as the `tflite` stage ships them; bytes per param: file bytes over the file's weight and bias "
             "values. Ratios: against "
             f"`{REFERENCE}` at the same input size and weight scales (< 1 = smaller / faster).", ""] + table(rows)
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
