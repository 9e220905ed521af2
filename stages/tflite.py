"""Stage `tflite`: full-integer INT8 TFLite (INT8 input and output) from the FP32 ONNX through onnx2tf,
calibrated with the exact calibration set of the `calibrate` stage, fully offline."""

from __future__ import annotations

from pathlib import Path

from pipeline.config.seeding import warm_up_math_kernels
from pipeline.export.quantize import load_calibration_set
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("onnx", "FP32 ONNX from the onnx stage"), ("calib", "calibration set .npy"),
                      ("out", "INT8 TFLite file to write"), ("metrics", "metrics JSON to write"))
    warm_up_math_kernels()
    step = Steps("tflite", 2)
    images = load_calibration_set(args.calib)
    step(f"converting {args.onnx} with onnx2tf, calibrated on {len(images)} images")
    info = export_tflite_int8(args.onnx, Path(args.out).parent, images, out_path=args.out, keep_float32=False)
    step(f"wrote {args.out} ({Path(args.out).stat().st_size:,} bytes)")
    step.write_metrics(args.metrics, {k: v for k, v in info.items() if "path" not in k})


if __name__ == "__main__":
    main()
