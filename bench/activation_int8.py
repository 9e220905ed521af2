"""Which activation survives full-INT8 TFLite best? Trains leafyolo_u once per activation on the same generated
data with the same seed and budget, converts each through the pipeline's own onnx2tf path, and reports FP32 and
INT8 mAP50 and the drop, evaluated by the shared evaluator.

    python -m bench.activation_int8 [--acts relu silu] [--epochs 10] [--imgsz 128] [--out bench/results/activation_int8.md]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from bench.stamp import stamp, write_report
from pipeline.backends import TFLiteBackend, TorchBackend
from pipeline.calibration import draw_calibration_images
from pipeline.data.augment import AugmentParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.data.synthetic import generate_dataset
from pipeline.evaluate import evaluate
from pipeline.export.onnx_export import export_onnx
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train_params import TrainParams
from pipeline.training_run import train_model


def run(act: str, data_yaml: Path, p: TrainParams, work: Path) -> dict:
    torch.manual_seed(p.seed)
    model = LeafYOLO("leafyolo_u", load_data_yaml(data_yaml).nc, act=act)
    result = train_model(model, data_yaml, p, work / f"{act}.pt", work / f"{act}-resume")
    data = load_data_yaml(data_yaml)
    val = YoloDataset(data.val, data.nc, p.imgsz, names=data.names)
    fp32 = evaluate(TorchBackend(result.model), val, progress=False)
    export_onnx(result.model, work / f"{act}.onnx", p.imgsz)
    n_train = len(YoloDataset(data.train, data.nc, p.imgsz, cache_images=False))
    calib = draw_calibration_images(data_yaml, p.imgsz, min(64, n_train), seed=0)
    info = export_tflite_int8(work / f"{act}.onnx", work, calib, out_path=work / f"{act}_int8.tflite",
                              keep_float32=False)
    int8 = evaluate(TFLiteBackend(work / f"{act}_int8.tflite"), val, progress=False)
    return {"act": act, "fp32_map50": fp32["map50"], "int8_map50": int8["map50"], "fp32_map": fp32["map"],
            "int8_map": int8["map"], "drop_map50": fp32["map50"] - int8["map50"], "tflite_bytes": info["size_bytes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--acts", nargs="+", default=["relu", "silu"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=240)
    parser.add_argument("--out", default="bench/results/activation_int8.md")
    args = parser.parse_args()
    p = TrainParams(epochs=args.epochs, batch_size=16, imgsz=args.imgsz, optimizer="AdamW", lr0=0.002, lrf=0.05,
                    momentum=0.9, warmup_epochs=1.0, augment=AugmentParams())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_yaml = generate_dataset(work / "data", n_train=args.n_train, n_val=80, imgsz=args.imgsz, seed=1)
        for i, act in enumerate(args.acts, 1):
            print(f"[activation {i}/{len(args.acts)}] {act}: train {args.epochs} epochs at {args.imgsz}, INT8 TFLite",
                  flush=True)
            rows.append(run(act, data_yaml, p, work))
            print(f"  {rows[-1]}", flush=True)
    lines = ["# Activation vs full-INT8 accuracy drop", "", stamp(), "",
             f"leafyolo_u trained {args.epochs} epochs at {args.imgsz}px on {args.n_train} generated images "
             "(same seed and data for each activation), converted with the pipeline's onnx2tf full-INT8 path, "
             "evaluated on 80 generated val images by the shared evaluator.", "",
             "| activation | FP32 mAP50 | INT8 mAP50 | drop | FP32 mAP50-95 | INT8 mAP50-95 | TFLite bytes |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['act']} | {r['fp32_map50']:.3f} | {r['int8_map50']:.3f} | {r['drop_map50']:+.3f} | "
              f"{r['fp32_map']:.3f} | {r['int8_map']:.3f} | {r['tflite_bytes']:,} |" for r in rows]
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
