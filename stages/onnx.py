"""Stage `onnx`: FP32 ONNX (opset from params, onnxsim-simplified, `onnx.checker` clean, parity-checked against
torch) plus an FP16 ONNX, both with FP32 input/output and post-processing left outside the graph, and both carrying
the class names, image size and variant in their metadata_props."""

from __future__ import annotations

from pipeline.common.seeding import warm_up_math_kernels
from pipeline.config.params import load_section
from pipeline.config.stages import OnnxParams
from pipeline.export.onnx_export import export_onnx
from pipeline.io.file_metadata import file_metadata
from pipeline.io.model_loader import load_model
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("model", "fine-tuned checkpoint"), ("out", "FP32 ONNX to write"),
                      ("fp16", "FP16 ONNX to write"), ("metrics", "metrics JSON to write"))
    p = load_section(args.params, "onnx", OnnxParams)
    warm_up_math_kernels()
    step = Steps("onnx", 2)
    model, ckpt = load_model(args.model)
    step(f"exporting {args.model} at {ckpt['imgsz']}px, opset {p.opset}")
    meta = file_metadata(model.variant, model.nc, ckpt["names"], int(ckpt["imgsz"]), ckpt.get("data"))
    info = export_onnx(model, args.out, int(ckpt["imgsz"]), opset=p.opset, simplify=p.simplify, fp16_path=args.fp16,
                       metadata=meta)
    step(f"wrote {args.out} ({info['size_bytes']:,} bytes, parity vs torch {info['parity']}) and {args.fp16}")
    step.write_metrics(args.metrics, {k: v for k, v in info.items() if not k.endswith("path")})


if __name__ == "__main__":
    main()
