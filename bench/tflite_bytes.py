"""Fit the bytes model behind `prune.target_bytes`: a trained checkpoint pruned at several sparsities, each exported
to the full-INT8 TFLite the chain ships (stripped), once per weight-scale granularity (`tflite.quant_type`), and its
size fitted as overhead + weights + per_channel x output channels (pipeline/compress/bytes_model.py). Reports every
file with its predicted size and error.

    python -m bench.tflite_bytes [--model artifacts/distill/model.pt] [--calib artifacts/calibrate/calib.npy]
                                 [--sparsities 0 0.2 0.35 0.5 0.65] [--quant-types per-tensor per-channel]
                                 [--out bench/results/tflite_bytes.md]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np

from bench.stamp import stamp, write_report
from pipeline.compress.bytes_model import BytesFit, conv_totals
from pipeline.compress.prune import prune
from pipeline.config.stages import QUANT_TYPES
from pipeline.export.onnx_export import export_onnx
from pipeline.export.quantize import load_calibration_set
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.export.tflite_size import size_breakdown, strip_tflite
from pipeline.io.model_loader import load_model


def measure(model_path: Path, calib: np.ndarray, sparsities: list[float], quant_types: list[str]) -> list[dict]:
    base, ckpt = load_model(model_path)
    imgsz = int(ckpt["imgsz"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(sparsities, 1):
            model = copy.deepcopy(base)
            if s:
                prune(model, s, imgsz, verbose=False)
            onnx_path = Path(tmp) / f"{s}.onnx"
            export_onnx(model, onnx_path, imgsz)
            for quant_type in quant_types:
                tfl = Path(tmp) / f"{s}-{quant_type}.tflite"
                export_tflite_int8(onnx_path, Path(tmp), calib, out_path=tfl, keep_float32=False, quant_type=quant_type)
                strip_tflite(tfl, tfl, calib[:8])
                size = size_breakdown(tfl)
                weights, channels = conv_totals(model, shared_weights_once=quant_type == "per-channel")
                rows.append({"sparsity": s, "quant_type": quant_type, "params": sum(p.numel() for p in model.parameters()),
                             "weights": weights, "channels": channels, "bytes": size["total"],
                             "bytes_per_param": size["bytes_per_param"]})
                print(f"[bytes {k}/{len(sparsities)}] sparsity {s}, {quant_type}: {size['total']:,} bytes, "
                      f"{weights:,} weights, {channels:,} channels", flush=True)
    return rows


def fit(rows: list[dict]) -> BytesFit:
    """Least squares of bytes - weights = overhead + per_channel x channels."""
    a = np.array([[1.0, r["channels"]] for r in rows])
    y = np.array([r["bytes"] - r["weights"] for r in rows], dtype=float)
    (overhead, per_channel), *_ = np.linalg.lstsq(a, y, rcond=None)
    errors = [abs(overhead + r["weights"] + per_channel * r["channels"] - r["bytes"]) / r["bytes"] for r in rows]
    return BytesFit(round(float(overhead), 1), round(float(per_channel), 3), round(max(errors), 5),
                    shared_weights_once=rows[0]["quant_type"] == "per-channel")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="artifacts/distill/model.pt")
    parser.add_argument("--calib", default="artifacts/calibrate/calib.npy")
    parser.add_argument("--sparsities", nargs="+", type=float, default=[0.0, 0.2, 0.35, 0.5, 0.65])
    parser.add_argument("--quant-types", nargs="+", default=list(QUANT_TYPES), choices=QUANT_TYPES)
    parser.add_argument("--out", default="bench/results/tflite_bytes.md")
    args = parser.parse_args()
    if len(args.sparsities) < 3:
        parser.error("--sparsities needs at least three values: two constants are fitted and checked")
    header = stamp()
    calib = load_calibration_set(args.calib)
    rows = measure(Path(args.model), calib, args.sparsities, args.quant_types)
    variant = load_model(args.model)[1]["variant"]
    fits = {q: fit([r for r in rows if r["quant_type"] == q]) for q in args.quant_types}
    lines = ["# Bytes model of the INT8 TFLite file (`prune.target_bytes`)", "", header, "",
             f"`{args.model}` ({variant}) pruned at each sparsity, exported to full-INT8 TFLite and stripped as the "
             "chain does, with each `tflite.quant_type`; fit: bytes = overhead + weights + per_channel x output "
             "channels.", "", "    FITTED = {"]
    lines += [f"        (\"{variant}\", \"{q}\"): BytesFit(overhead={f.overhead}, per_channel={f.per_channel}, "
              f"max_rel_error={f.max_rel_error}{', shared_weights_once=True' if f.shared_weights_once else ''}),"
              for q, f in fits.items()]
    lines += ["    }", "", "| quant_type | sparsity | params | conv weights | output channels | INT8 TFLite bytes | "
              "predicted | bytes per param |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        f = fits[r["quant_type"]]
        pred = f.overhead + r["weights"] + f.per_channel * r["channels"]
        lines.append(f"| {r['quant_type']} | {r['sparsity']} | {r['params']:,} | {r['weights']:,} | {r['channels']:,} | "
                     f"{r['bytes']:,} | {pred:,.0f} | {r['bytes_per_param']:.3f} |")
    write_report(args.out, lines, {"variant": variant, "fits": {q: vars(f) for q, f in fits.items()}, "rows": rows})


if __name__ == "__main__":
    main()
