"""RAM on a microcontroller: the TensorFlow Lite Micro tensor arena of our INT8 TFLite against YOLOv8n's (and
YOLO11n's) at the input sizes microcontrollers use, every file through the same path.

Each model is exported to FP32 ONNX (Ultralytics models from their yaml in the bench environment, random weights:
the arena depends on tensor shapes, not weights) and converted to full-INT8 TFLite by the pipeline's onnx2tf path,
calibrated on the same generated images; then loaded in TFLM (PyPI `tflite-micro`, reference kernels, 64-bit host)
and the smallest arena that loads and runs one inference is found by bisection. A model with an op TFLM has no
kernel for is reported with that op instead of an arena. Ratios are against YOLOv8n at the same input size.

    python -m bench.tflm_arena [--sizes 128 192 320] [--models leafyolo_u-p30 yolov8n yolo11n] [--nc 80]
                               [--work DIR] [--out bench/results/tflm_arena.md]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from bench.deploy_compare import MODELS, build_fp32, calibration_images
from bench.stamp import stamp, write_report
from bench.ultralytics_env import bench_python
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.export.tflite_size import op_types, strip_tflite
from pipeline.infer.tflm import min_arena_bytes
from pipeline.io.jsonio import read_json, write_json

REFERENCE = "yolov8n"
ESP32_S3_SRAM = 512 * 1024


def convert(name: str, imgsz: int, nc: int, calib, work: Path) -> dict[str, Any]:
    """FP32 ONNX -> INT8 TFLite (default weight scales), stripped as the `tflite` stage ships it (LiteRT outputs
    checked bit-identical; TFLM's reference kernels are too slow on the 320 px peers for the check), in
    `work/name-imgsz/` (reused when already there)."""
    d = work / f"{name}-{imgsz}"
    d.mkdir(parents=True, exist_ok=True)
    tflite, meta = d / "int8.tflite", d / "meta.json"
    if not (tflite.is_file() and meta.is_file()):
        info = build_fp32(name, imgsz, nc, d / "fp32.onnx")
        export_tflite_int8(d / "fp32.onnx", d, calib, out_path=tflite, keep_float32=False)
        strip_tflite(tflite, tflite, calib[:8], micro=False)
        write_json(meta, info)
    return {**read_json(meta), "tflite": tflite}


def measure(tflite: Path) -> dict[str, Any]:
    try:
        return {"arena_bytes": min_arena_bytes(tflite), "tflm_error": None}
    except RuntimeError as e:
        return {"arena_bytes": None, "tflm_error": str(e).split("it said: ")[-1][:200]}


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| model | input | params | INT8 TFLite bytes | TFLM arena bytes | x YOLOv8n arena | fits 512 KiB |",
             "|---|---:|---:|---:|---:|---:|:---:|"]
    for r in rows:
        if r["arena_bytes"] is None:
            arena, ratio, fits = f"does not load: {r['tflm_error']}", "-", "-"
        else:
            arena = f"{r['arena_bytes']:,}"
            ratio = f"{r['arena_ratio']:.2f}" if r.get("arena_ratio") is not None else "-"
            fits = "yes" if r["arena_bytes"] <= ESP32_S3_SRAM else "no"
        lines.append(f"| `{r['model']}` | {r['imgsz']} | {r['params']:,} | {r['tflite_bytes']:,} | {arena} | {ratio} "
                     f"| {fits} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 192, 320])
    parser.add_argument("--models", nargs="+", default=["leafyolo_u-p30", "yolov8n", "yolo11n"], choices=list(MODELS))
    parser.add_argument("--nc", type=int, default=80)
    parser.add_argument("--calib", type=int, default=32, help="calibration images")
    parser.add_argument("--work", default=None, help="keep converted files here and reuse them")
    parser.add_argument("--out", default="bench/results/tflm_arena.md")
    args = parser.parse_args()
    if any(MODELS[m][0] == "ultralytics" for m in args.models):
        bench_python()  # fail before converting our models when the bench environment is missing
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        n = len(args.models) * len(args.sizes)
        for imgsz in args.sizes:
            calib = calibration_images(imgsz, args.calib, work)
            for name in args.models:
                print(f"[tflm {len(rows) + 1}/{n}] {name} @ {imgsz}: INT8 TFLite, TFLM arena", flush=True)
                info = convert(name, imgsz, args.nc, calib, work)
                rows.append({"model": name, "imgsz": imgsz, "params": info["params"],
                             "tflite_bytes": info["tflite"].stat().st_size, "ops": sorted(op_types(info["tflite"])),
                             **measure(info["tflite"])})
    for r in rows:
        ref = next((x for x in rows if x["model"] == REFERENCE and x["imgsz"] == r["imgsz"]), None)
        ok = ref is not None and ref["arena_bytes"] and r["arena_bytes"]
        r["arena_ratio"] = r["arena_bytes"] / ref["arena_bytes"] if ok else None
    lines = ["# Microcontroller RAM: TFLM tensor arena vs Ultralytics", "", stamp(), "",
             f"nc={args.nc}, random weights, {args.calib} generated calibration images, full-INT8 TFLite from the "
             "pipeline's onnx2tf path (per-tensor weight scales, stripped as the `tflite` stage ships it; "
             "`leafyolo_u-p30` = the deployable architecture, 30 % pruned). Arena: the "
             "smallest TensorFlow Lite Micro tensor arena that loads the file and runs one inference (bisection to "
             "16 bytes, reference kernels, 64-bit host: a 32-bit MCU needs somewhat less for its pointers). "
             f"Ratios against `{REFERENCE}` at the same input size; 512 KiB is the SRAM of common ESP32-S3 boards.",
             ""] + table(rows)
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
