"""Stage `tflite`: full-integer INT8 TFLite (INT8 input and output) from the FP32 ONNX through onnx2tf, with one
weight scale per filter or per output channel (`tflite.quant_type`), calibrated with the exact calibration set of
the `calibrate` stage, fully offline; then stripped of what LiteRT never reads (tensor names, converter metadata,
repeated tables) with bit-identical outputs, and broken down by where its bytes go; finally loaded in TensorFlow
Lite Micro (failing when an op has no TFLM kernel), its smallest tensor arena measured, and written as a C
source/header pair for firmware. The ONNX's metadata (class names, image size, variant) travels
into the file (a `leafyolo` metadata entry) with the input quantisation."""

from __future__ import annotations

from pathlib import Path

from pipeline.common.seeding import warm_up_math_kernels
from pipeline.config.params import load_section
from pipeline.config.stages import PruneParams, TfliteParams
from pipeline.export.c_array import write_c_array
from pipeline.export.common import ExportError
from pipeline.export.quantize import load_calibration_set
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.export.tflite_size import STRIP_CHECK, format_breakdown, size_breakdown, strip_tflite
from pipeline.infer.tflm import min_arena_bytes
from pipeline.io.file_metadata import embed_tflite_metadata, read_onnx_metadata
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("onnx", "FP32 ONNX from the onnx stage"), ("calib", "calibration set .npy"),
                      ("out", "INT8 TFLite file to write"), ("c_header", "C header to write (arena size, I/O quantisation)"),
                      ("c_source", "C source to write (the model bytes as an array)"),
                      ("metrics", "metrics JSON to write"))
    target_bytes = load_section(args.params, "prune", PruneParams).target_bytes
    quant_type = load_section(args.params, "tflite", TfliteParams).quant_type
    warm_up_math_kernels()
    step = Steps("tflite", 5)
    images = load_calibration_set(args.calib)
    step(f"converting {args.onnx} with onnx2tf ({quant_type} weight scales), calibrated on {len(images)} images")
    info = export_tflite_int8(args.onnx, Path(args.out).parent, images, out_path=args.out, keep_float32=False,
                              quant_type=quant_type)
    meta = {**read_onnx_metadata(args.onnx), "input": {k: info["input"][k] for k in ("dtype", "scale", "zero_point",
                                                                                      "layout", "shape")},
            "outputs": {name: {k: o[k] for k in ("position", "shape", "scale", "zero_point")}
                        for name, o in info["outputs"].items()}}
    embed_tflite_metadata(args.out, args.out, meta)
    step(f"stripping what LiteRT never reads and sharing repeated tables, outputs checked bit-identical (LiteRT and TFLM) on "
         f"{min(len(images), STRIP_CHECK)} images")
    stripped = strip_tflite(args.out, args.out, images[:STRIP_CHECK])
    size = size_breakdown(args.out)
    if target_bytes and size["total"] > target_bytes:
        raise ExportError(f"{args.out} is {size['total']:,} bytes, over prune.target_bytes={target_bytes:,}: the "
                          f"bytes model of pipeline/compress/bytes_model.py under-predicted this file; lower "
                          f"prune.target_bytes by the difference or refit the model (python -m bench.tflite_bytes)")
    step(f"wrote {args.out} ({size['total']:,} bytes, {stripped['size_before'] - size['total']:,} stripped): "
         + format_breakdown(size))
    step("loading it in TensorFlow Lite Micro: smallest tensor arena, C array for firmware")
    try:
        arena = min_arena_bytes(args.out)
    except RuntimeError as e:
        raise ExportError(f"{args.out} does not run under TensorFlow Lite Micro: {e}") from e
    c_files = write_c_array(args.out, args.c_header, args.c_source, arena, info, names=meta.get("names"))
    step(f"TFLM arena {arena:,} bytes; wrote {args.c_header} and {args.c_source}")
    step.write_metrics(args.metrics, {**{k: v for k, v in info.items() if "path" not in k}, "size_bytes": size["total"],
                                      "converted_bytes": stripped["size_before"], "stripped": stripped["removed"],
                                      "size_breakdown": size, "tflm_arena_bytes": arena,
                                      "c_array": {k: c_files[k] for k in ("name", "bytes")},
                                      **({"target_bytes": target_bytes, "target_fill": size["total"] / target_bytes}
                                         if target_bytes else {})})


if __name__ == "__main__":
    main()
