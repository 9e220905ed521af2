"""Stage `tflite`: full-integer INT8 TFLite (INT8 input and output) from the FP32 ONNX through onnx2tf,
calibrated with the exact calibration set of the `calibrate` stage, fully offline; then stripped of what LiteRT
never reads (tensor names, converter metadata) with bit-identical outputs, and broken down by where its bytes go."""

from __future__ import annotations

from pathlib import Path

from pipeline.config.params import load_section
from pipeline.config.seeding import warm_up_math_kernels
from pipeline.config.stages import PruneParams
from pipeline.export.common import ExportError
from pipeline.export.quantize import load_calibration_set
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.export.tflite_size import STRIP_CHECK, format_breakdown, size_breakdown, strip_tflite
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("onnx", "FP32 ONNX from the onnx stage"), ("calib", "calibration set .npy"),
                      ("out", "INT8 TFLite file to write"), ("metrics", "metrics JSON to write"))
    target_bytes = load_section(args.params, "prune", PruneParams).target_bytes
    warm_up_math_kernels()
    step = Steps("tflite", 3)
    images = load_calibration_set(args.calib)
    step(f"converting {args.onnx} with onnx2tf, calibrated on {len(images)} images")
    info = export_tflite_int8(args.onnx, Path(args.out).parent, images, out_path=args.out, keep_float32=False)
    step(f"stripping what LiteRT never reads, outputs checked bit-identical on {min(len(images), STRIP_CHECK)} images")
    stripped = strip_tflite(args.out, args.out, images[:STRIP_CHECK])
    size = size_breakdown(args.out)
    if target_bytes and size["total"] > target_bytes:
        raise ExportError(f"{args.out} is {size['total']:,} bytes, over prune.target_bytes={target_bytes:,}: the "
                          f"bytes model of pipeline/compress/bytes_model.py under-predicted this file; lower "
                          f"prune.target_bytes by the difference or refit the model (python -m bench.tflite_bytes)")
    step(f"wrote {args.out} ({size['total']:,} bytes, {stripped['size_before'] - size['total']:,} stripped): "
         + format_breakdown(size))
    step.write_metrics(args.metrics, {**{k: v for k, v in info.items() if "path" not in k}, "size_bytes": size["total"],
                                      "converted_bytes": stripped["size_before"], "stripped": stripped["removed"],
                                      "size_breakdown": size,
                                      **({"target_bytes": target_bytes, "target_fill": size["total"] / target_bytes}
                                         if target_bytes else {})})


if __name__ == "__main__":
    main()
