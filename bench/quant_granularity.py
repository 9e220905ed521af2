"""Per-channel or per-tensor weight scales in the full-INT8 TFLite: what each costs in bytes and in mAP50.

Per-channel files carry a float32 scale per output channel on every filter and again on every bias (the int64 zero
points are shared, pipeline/io/tflite_file.py); per-tensor files carry one. This script converts the same FP32 ONNX
both ways through the pipeline's own onnx2tf path and stripping, scores both files on the same val images with the
shared evaluator, and reports sizes, bytes per parameter, mAP50 with its 95 % bootstrap interval and the paired
interval of the difference (same resampled images for both files), so `tflite.quant_type` is chosen from a
measurement.

Cases: the chain's own files (`--case NAME ONNX CALIB DATA_YAML`, e.g. the default run's artifacts), and models
trained here from scratch on another dataset at several image sizes (`--train DATA_YAML --imgsz 192 256`, the
student's training params from params.yaml `distill.train` with `--epochs` overriding the epochs).

    python -m bench.quant_granularity --case default artifacts/onnx/model_fp32.onnx artifacts/calibrate/calib.npy \
        artifacts/data/dataset/data.yaml --train ../shared/datasets/bccd/data.yaml --imgsz 192 256 --epochs 10
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.stamp import stamp, write_report
from pipeline.config.params import load_section
from pipeline.config.stages import CalibrateParams, DistillParams, EvaluateParams
from pipeline.data.calibration import draw_calibration_images
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.evaluate.bootstrap import paired_interval
from pipeline.evaluate.evaluator import evaluate
from pipeline.export.onnx_export import export_onnx
from pipeline.export.quantize import load_calibration_set
from pipeline.export.tflite_export import QUANT_TYPES, export_tflite_int8
from pipeline.export.tflite_size import STRIP_CHECK, size_breakdown, strip_tflite
from pipeline.infer.backends import TFLiteBackend
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train.run import train_model


def compare(name: str, onnx: Path, calib: np.ndarray, data_yaml: Path, imgsz: int, p: EvaluateParams,
            work: Path) -> dict:
    """Both conversions of `onnx`, scored on the val split of `data_yaml`."""
    data = load_data_yaml(data_yaml)
    val = YoloDataset(data.val, data.nc, imgsz, augment=None, names=data.names)
    row: dict = {"case": name, "imgsz": imgsz, "val_images": len(val)}
    samples = {}
    for quant_type in QUANT_TYPES:
        path = work / f"{name}_{quant_type}.tflite"
        export_tflite_int8(onnx, work, calib, out_path=path, keep_float32=False, quant_type=quant_type)
        strip_tflite(path, path, calib[:STRIP_CHECK])
        size = size_breakdown(path)
        m = evaluate(TFLiteBackend(path), val, conf_thres=p.conf_thres, iou_thres=p.iou_thres, progress=False,
                     bootstrap=p.bootstrap_resamples, bootstrap_seed=p.bootstrap_seed)
        samples[quant_type] = m["map50_samples"]
        row[quant_type] = {"bytes": size["total"], "bytes_per_param": size["bytes_per_param"],
                           "params": size["params"], "quantization_bytes": size["parts"]["quantization"],
                           "map50": float(m["map50"]), "map50_ci": [float(m["map50_ci_low"]), float(m["map50_ci_high"])]}
        print(f"  {name} {quant_type}: {size['total']:,} B ({size['bytes_per_param']:.3f} B/param), mAP50 "
              f"{m['map50']:.4f} [{m['map50_ci_low']:.4f}, {m['map50_ci_high']:.4f}]", flush=True)
    tensor, channel = row["per-tensor"], row["per-channel"]
    row["delta_map50"] = tensor["map50"] - channel["map50"]
    row["delta_map50_ci"] = list(paired_interval(samples["per-tensor"], samples["per-channel"]))
    row["bytes_saved"] = channel["bytes"] - tensor["bytes"]
    return row


def trained_case(data_yaml: Path, imgsz: int, sp: DistillParams, epochs: int | None, n_calib: int,
                 work: Path) -> tuple[Path, np.ndarray]:
    """The student trained from scratch on `data_yaml` at `imgsz` (seeded), its FP32 ONNX and a calibration set."""
    p = dataclasses.replace(sp.train, imgsz=imgsz, **({"epochs": epochs, "min_steps": 0} if epochs else {}))
    torch.manual_seed(p.seed)
    model = LeafYOLO(sp.variant, load_data_yaml(data_yaml).nc, act=sp.act)
    result = train_model(model, data_yaml, p, work / f"{imgsz}.pt", work / f"{imgsz}-resume")
    onnx = work / f"{imgsz}.onnx"
    export_onnx(result.model, onnx, imgsz)
    return onnx, draw_calibration_images(data_yaml, imgsz, n_calib, seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", nargs=4, action="append", default=[], metavar=("NAME", "ONNX", "CALIB", "DATA"),
                        help="an FP32 ONNX with its calibration set (.npy) and data.yaml")
    parser.add_argument("--train", type=Path, help="a data.yaml to train the student on from scratch")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[192, 256], help="image sizes for --train")
    parser.add_argument("--epochs", type=int, default=None, help="override distill.train.epochs for --train")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", default="bench/results/quant_granularity.md")
    args = parser.parse_args()
    header = stamp()  # the commit whose code runs, before the long work
    if not args.case and not args.train:
        parser.error("give at least one --case or --train")
    for name, onnx, calib, data in args.case:
        for path in (onnx, calib, data):
            if not Path(path).is_file():
                parser.error(f"--case {name}: {path} does not exist")
    if args.train and not args.train.is_file():
        parser.error(f"--train: {args.train} does not exist")
    p = load_section(args.params, "evaluate", EvaluateParams)
    sp = load_section(args.params, "distill", DistillParams)
    n_calib = load_section(args.params, "calibrate", CalibrateParams).subset_size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, onnx, calib, data in args.case:
            images = load_calibration_set(calib)
            print(f"[{name}] {onnx}: converting per-channel and per-tensor, evaluating on {data}", flush=True)
            rows.append(compare(name, Path(onnx), images, Path(data), images.shape[-1], p, work))
        for imgsz in args.imgsz if args.train else []:
            print(f"[{args.train} @ {imgsz}px] training {sp.variant} from scratch", flush=True)
            onnx, images = trained_case(args.train, imgsz, sp, args.epochs, n_calib, work)
            rows.append(compare(f"{args.train.parent.name}@{imgsz}", onnx, images, args.train, imgsz, p, work))
    epochs = args.epochs or sp.train.epochs
    lines = ["# Per-channel vs per-tensor weight scales in the INT8 TFLite", "", header, "",
             "Each FP32 ONNX converted both ways through the pipeline's onnx2tf path and stripping; mAP50 on the "
             f"case's val split with 95 % bootstrap intervals ({p.bootstrap_resamples} resamples); the difference "
             "per-tensor - per-channel with its paired interval (the same resampled images for both files). "
             + (f"Trained cases: `{sp.variant}` from scratch, {epochs} epochs, `distill.train` otherwise." if args.train else ""),
             "", "| case | px | val images | per-channel bytes (B/param) | per-tensor bytes (B/param) | "
             "per-channel mAP50 | per-tensor mAP50 | per-tensor - per-channel |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        c, t = r["per-channel"], r["per-tensor"]
        lines.append(f"| {r['case']} | {r['imgsz']} | {r['val_images']} | {c['bytes']:,} ({c['bytes_per_param']:.3f}) | "
                     f"{t['bytes']:,} ({t['bytes_per_param']:.3f}) | {c['map50']:.3f} [{c['map50_ci'][0]:.3f}, "
                     f"{c['map50_ci'][1]:.3f}] | {t['map50']:.3f} [{t['map50_ci'][0]:.3f}, {t['map50_ci'][1]:.3f}] | "
                     f"{r['delta_map50']:+.3f} [{r['delta_map50_ci'][0]:+.3f}, {r['delta_map50_ci'][1]:+.3f}] |")
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
