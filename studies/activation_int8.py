"""Which activation survives full-INT8 TFLite best? Trains the student once per activation on the default generated
dataset (params.yaml `data`) with the student's training budget (params.yaml `distill.train`, no teacher), the same
seed for each, converts each through the pipeline's own onnx2tf path, and reports FP32 and INT8 mAP50 and the drop,
evaluated by the shared evaluator.

    python -m studies.activation_int8 [--acts relu silu] [--epochs N] [--n-train N] [--out studies/results/activation_int8.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import torch

from bench.stamp import stamp, write_report
from pipeline.config.params import load_section
from pipeline.config.stages import CalibrateParams, DataParams, DistillParams
from pipeline.config.train import TrainParams
from pipeline.data.calibration import draw_calibration_images
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.data.synthetic import generate_dataset
from pipeline.evaluate.evaluator import evaluate
from pipeline.export.onnx_export import export_onnx
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.infer.backends import TFLiteBackend, TorchBackend
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train.run import train_model


def run(act: str, variant: str, data_yaml: Path, p: TrainParams, n_calib: int, work: Path) -> dict:
    torch.manual_seed(p.seed)
    model = LeafYOLO(variant, load_data_yaml(data_yaml).nc, act=act)
    result = train_model(model, data_yaml, p, work / f"{act}.pt", work / f"{act}-resume")
    data = load_data_yaml(data_yaml)
    val = YoloDataset(data.val, data.nc, p.imgsz, names=data.names)
    fp32 = evaluate(TorchBackend(result.model), val, progress=False)
    export_onnx(result.model, work / f"{act}.onnx", p.imgsz)
    n_train = len(YoloDataset(data.train, data.nc, p.imgsz, cache_images=False))
    calib = draw_calibration_images(data_yaml, p.imgsz, min(n_calib, n_train), seed=0)
    info = export_tflite_int8(work / f"{act}.onnx", work, calib, out_path=work / f"{act}_int8.tflite",
                              keep_float32=False)
    int8 = evaluate(TFLiteBackend(work / f"{act}_int8.tflite"), val, progress=False)
    return {"act": act, "fp32_map50": fp32["map50"], "int8_map50": int8["map50"], "fp32_map": fp32["map"],
            "int8_map": int8["map"], "drop_map50": fp32["map50"] - int8["map50"], "tflite_bytes": info["size_bytes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--acts", nargs="+", default=["relu", "silu"])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--epochs", type=int, default=None, help="override distill.train.epochs")
    parser.add_argument("--n-train", type=int, default=None, help="override data.n_train (and n_val to a quarter)")
    parser.add_argument("--out", default="studies/results/activation_int8.md")
    args = parser.parse_args()
    dp = load_section(args.params, "data", DataParams)
    sp = load_section(args.params, "distill", DistillParams)
    cp = load_section(args.params, "calibrate", CalibrateParams)
    p = sp.train if args.epochs is None else dataclasses.replace(sp.train, epochs=args.epochs)
    n_train = args.n_train or dp.n_train
    n_val = max(8, n_train // 4) if args.n_train else dp.n_val
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_yaml = generate_dataset(work / "data", n_train=n_train, n_val=n_val, imgsz=dp.imgsz, seed=dp.seed,
                                     min_size=dp.min_object_px, max_size=dp.max_object_px)
        for i, act in enumerate(args.acts, 1):
            print(f"[activation {i}/{len(args.acts)}] {act}: train {sp.variant} {p.epochs} epochs at {p.imgsz}, "
                  "INT8 TFLite", flush=True)
            rows.append(run(act, sp.variant, data_yaml, p, cp.subset_size, work))
            print(f"  {rows[-1]}", flush=True)
    lines = ["# Activation vs full-INT8 accuracy drop", "", stamp(), "",
             f"`{sp.variant}` trained from scratch {p.epochs} epochs at {p.imgsz}px (batch {p.batch_size}, "
             f"{p.optimizer} lr0 {p.lr0}) on {n_train} generated images (objects {dp.min_object_px:g}-"
             f"{dp.max_object_px:g} px; same seed and data for each activation), converted with the pipeline's "
             f"onnx2tf full-INT8 path, evaluated on {n_val} generated val images by the shared evaluator.", "",
             "| activation | FP32 mAP50 | INT8 mAP50 | drop | FP32 mAP50-95 | INT8 mAP50-95 | TFLite bytes |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['act']} | {r['fp32_map50']:.3f} | {r['int8_map50']:.3f} | {r['drop_map50']:+.3f} | "
              f"{r['fp32_map']:.3f} | {r['int8_map']:.3f} | {r['tflite_bytes']:,} |" for r in rows]
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
