"""Deployable size and speed against Ultralytics YOLOv8n and YOLO11n, at 320 and 416 input, nc=80.

Every model goes through the same path: FP32 ONNX (onnxsim, checker), NNCF INT8 QDQ ONNX, and full-INT8 TFLite via
the pipeline's onnx2tf conversion, calibrated on the same generated images. Ultralytics models are built from their
yaml (random weights: size and speed do not depend on the weights) in the bench environment and exported with the
same graph contract (boxes and scores, decoding and NMS outside). Latency: median of repeated single-thread runs
after a warm-up, LiteRT for TFLite and onnxruntime for ONNX, all measured in this one process, one after the other.
Ratios are against YOLOv8n at the same input size.

    python -m bench.deploy_compare [--sizes 320 416] [--models ...] [--runs 50] [--work DIR]
                                   [--out bench/results/deploy_compare.md]

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
from pipeline.data.calibration import draw_calibration_images
from pipeline.data.synthetic import generate_dataset
from pipeline.export.onnx_export import export_onnx
from pipeline.export.quantize import quantize_onnx_int8
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.infer.backends import OnnxBackend, TFLiteBackend
from pipeline.infer.latency import measure_latency
from pipeline.io.jsonio import read_json, write_json
from pipeline.model.leafyolo import LeafYOLO

# name -> (kind, spec): "ours" spec = (variant, sparsity); "ultralytics" spec = model yaml
MODELS: dict[str, tuple[str, Any]] = {
    "leafyolo_u-p30": ("ours", ("leafyolo_u", 0.3)),
    "leafyolo_u": ("ours", ("leafyolo_u", 0.0)),
    "leafyolo_n": ("ours", ("leafyolo_n", 0.0)),
    "leafyolo_s": ("ours", ("leafyolo_s", 0.0)),
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
        variant, sparsity = spec
        torch.manual_seed(0)
        model = LeafYOLO(variant, nc).eval()
        if sparsity:
            model = prune(model, sparsity, imgsz).model.eval()
        export_onnx(model, path, imgsz)
        return {"params": sum(p.numel() for p in model.parameters()), "gflops": gflops(model, imgsz)}
    info = run_side(["export", "--cfg", spec, "--nc", str(nc), "--imgsz", str(imgsz), "--out", str(path)],
                    path.parent / "ultralytics-work")
    finish_onnx(path)
    return {"params": info["params"], "gflops": info["gflops"]}


def convert(name: str, imgsz: int, nc: int, calib: np.ndarray, work: Path) -> dict[str, Any]:
    d = work / f"{name}-{imgsz}"
    d.mkdir(parents=True, exist_ok=True)
    files = {"onnx_fp32": d / "fp32.onnx", "onnx_int8": d / "int8_qdq.onnx", "tflite_int8": d / "int8.tflite"}
    meta = d / "meta.json"
    if all(f.is_file() for f in files.values()) and meta.is_file():
        return {**read_json(meta), "files": files}
    info = build_fp32(name, imgsz, nc, files["onnx_fp32"])
    quantize_onnx_int8(files["onnx_fp32"], files["onnx_int8"], calib)
    export_tflite_int8(files["onnx_fp32"], d, calib, out_path=files["tflite_int8"], keep_float32=False)
    write_json(meta, info)
    return {**info, "files": files}


def measure(files: dict[str, Path], imgsz: int, runs: int, warmup: int) -> dict[str, float]:
    out = {}
    for key, backend in (("tflite_int8_ms", TFLiteBackend(files["tflite_int8"], num_threads=1)),
                         ("onnx_fp32_ms", OnnxBackend(files["onnx_fp32"], num_threads=1)),
                         ("onnx_int8_ms", OnnxBackend(files["onnx_int8"], num_threads=1))):
        out[key] = measure_latency(backend, imgsz, runs=runs, warmup=warmup)["latency_ms_median"]
    return out


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | input | params | GFLOPs | INT8 TFLite bytes | x YOLOv8n size | LiteRT INT8 ms (1 thread) | "
             "x YOLOv8n time | ORT FP32 ms | ORT INT8 ms | FP32 ONNX bytes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['imgsz']} | {r['params']:,} | {r['gflops']:.2f} | {r['tflite_bytes']:,} | "
                     f"{r['size_ratio']:.2f} | {r['tflite_int8_ms']:.1f} | {r['time_ratio']:.2f} | "
                     f"{r['onnx_fp32_ms']:.1f} | {r['onnx_int8_ms']:.1f} | {r['onnx_fp32_bytes']:,} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[320, 416])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--nc", type=int, default=80)
    parser.add_argument("--calib", type=int, default=64, help="calibration images")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--work", default=None)
    parser.add_argument("--out", default="bench/results/deploy_compare.md")
    args = parser.parse_args()
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
                built.append((name, imgsz, convert(name, imgsz, args.nc, calib, work)))
        for i, (name, imgsz, info) in enumerate(built, 1):
            print(f"[latency {i}/{n}] {name} @ {imgsz}", flush=True)
            files = info["files"]
            rows.append({"model": name, "imgsz": imgsz, "params": info["params"], "gflops": info["gflops"],
                         "tflite_bytes": files["tflite_int8"].stat().st_size,
                         "onnx_fp32_bytes": files["onnx_fp32"].stat().st_size,
                         "onnx_int8_bytes": files["onnx_int8"].stat().st_size,
                         **measure(files, imgsz, args.runs, args.warmup)})
    for r in rows:
        ref = next((x for x in rows if x["model"] == REFERENCE and x["imgsz"] == r["imgsz"]), r)
        r["size_ratio"] = r["tflite_bytes"] / ref["tflite_bytes"]
        r["time_ratio"] = r["tflite_int8_ms"] / ref["tflite_int8_ms"]
    lines = ["# Deployable size and speed vs Ultralytics", "", stamp(), "",
             f"nc={args.nc}, random weights, {args.calib} generated calibration images; latency = median of "
             f"{args.runs} single-thread runs after {args.warmup} warm-up runs. `leafyolo_u-p30` is the deployable "
             "architecture (leafyolo_u with 30% of its parameters pruned, as `prune.sparsity=0.3`). Ratios: against "
             f"`{REFERENCE}` at the same input size (< 1 = smaller / faster).", ""] + table(rows)
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
