"""Stage `calibrate` (PTQ): NNCF post-training quantisation of the fine-tuned model into an INT8 (QDQ) ONNX for
onnxruntime, on `calibrate.subset_size` training images; that exact calibration set is saved for the TFLite stage.
Decoding and NMS are outside the graph, so they are never quantised."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pipeline.common.seeding import warm_up_math_kernels
from pipeline.config.params import load_section
from pipeline.config.stages import CalibrateParams, OnnxParams
from pipeline.data.calibration import draw_calibration_images
from pipeline.export.onnx_export import export_onnx
from pipeline.export.quantize import quantization_report, quantize_onnx_int8, save_calibration_set
from pipeline.io.file_metadata import file_metadata
from pipeline.io.model_loader import load_model
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("data", "data.yaml from the data stage"), ("model", "fine-tuned checkpoint"),
                      ("calib", "calibration set .npy to write"), ("out", "INT8 QDQ ONNX to write"),
                      ("metrics", "metrics JSON to write"))
    p = load_section(args.params, "calibrate", CalibrateParams)
    warm_up_math_kernels()
    opset = load_section(args.params, "onnx", OnnxParams).opset
    step = Steps("calibrate", 4)
    model, ckpt = load_model(args.model)
    imgsz = int(ckpt["imgsz"])
    step(f"drawing {p.subset_size} calibration images at {imgsz}px from the training split")
    images = draw_calibration_images(args.data, imgsz, p.subset_size, p.seed)
    if len(images) < p.subset_size:
        print(f"note: calibrate.subset_size={p.subset_size} is larger than the training split: calibrating on all "
              f"{len(images)} training images", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        step("exporting the FP32 graph NNCF starts from")
        export_onnx(model, fp32, imgsz, opset=opset,  # the metadata (class names, ...) travels into the INT8 file
                    metadata=file_metadata(model.variant, model.nc, ckpt["names"], imgsz, ckpt.get("data")))
        step(f"calibrating on {len(images)} images (NNCF, preset {p.preset})")
        quantize_onnx_int8(fp32, args.out, images, preset=p.preset)
        report = quantization_report(fp32, args.out, images[: min(16, len(images))])
    save_calibration_set(images, args.calib)
    step(f"wrote {args.out} ({Path(args.out).stat().st_size:,} bytes) and {args.calib}")
    step.write_metrics(args.metrics, {"subset_size": p.subset_size, "images_used": len(images), "preset": p.preset,
                              "size_bytes": Path(args.out).stat().st_size, **report})


if __name__ == "__main__":
    main()
