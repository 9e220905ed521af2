"""Stage `evaluate`: mAP50 and mAP50-95 of every artifact with its own runtime (torch after distill, prune and
fine-tune; ONNX FP32/FP16; ONNX INT8 under onnxruntime; TFLite INT8 under LiteRT), file sizes, parameters and
single-thread CPU latency; the INT8 TFLite again under TensorFlow Lite Micro (mAP50, smallest tensor arena, outputs
against LiteRT's reference kernels). Writes the metrics JSON and the data of two plots (mAP vs size, precision-recall)."""

from __future__ import annotations

from pathlib import Path

from pipeline.common.seeding import warm_up_math_kernels
from pipeline.config.params import load_section
from pipeline.config.stages import EvaluateParams
from pipeline.evaluate.artifacts import evaluate_artifacts, final_figures, mean_pr_curve
from pipeline.evaluate.micro import REFERENCE_IMAGES, evaluate_micro
from pipeline.io.jsonio import write_json
from pipeline.io.model_loader import load_model
from pipeline.model.count import count_params
from pipeline.stage.steps import Steps, stage_args

CHAIN = ("distill", "prune", "finetune", "onnx_fp32", "onnx_fp16", "onnx_int8", "tflite_int8")


def main() -> None:
    args = stage_args(__doc__, ("data", "data.yaml"), *((name, f"{name} artifact") for name in CHAIN),
                      ("metrics", "metrics JSON to write"), ("size_plot", "mAP-vs-size plot data to write"),
                      ("pr_plot", "precision-recall plot data of the final file to write"))
    p = load_section(args.params, "evaluate", EvaluateParams)
    warm_up_math_kernels()
    step = Steps("evaluate", 3)
    final_model, ckpt = load_model(args.finetune)
    artifacts = {name: Path(getattr(args, name)) for name in CHAIN}
    step(f"evaluating {len(artifacts)} artifacts on the val split at {ckpt['imgsz']}px")
    out = evaluate_artifacts(args.data, artifacts, count_params(final_model), int(ckpt["imgsz"]), p)
    figures = out["artifacts"]
    step(f"running {artifacts['tflite_int8']} under TensorFlow Lite Micro (val split; first {REFERENCE_IMAGES} images "
         f"also against LiteRT's reference kernels)")
    micro = evaluate_micro(args.data, artifacts["tflite_int8"], int(ckpt["imgsz"]), p)
    final = {**final_figures(figures, out["map50_samples"]), "tflm_map50": micro["map50"],
             "tflm_arena_bytes": micro["arena_bytes"]}
    metrics = {"artifacts": figures, "tflm": micro, "final": final}
    step.write_metrics(args.metrics, metrics)
    write_json(args.size_plot, [{"artifact": k, "size_bytes": v["size_bytes"], "map50": v["map50"], "map": v["map"]}
                                for k, v in figures.items()])
    write_json(args.pr_plot, mean_pr_curve(out["pr_curve"]["tflite_int8"]))
    step("  ".join(f"{k}: mAP50 {v['map50']:.3f} {v['size_bytes']:,} B {v['latency_ms_median']:.1f} ms"
                   for k, v in figures.items())
         + f"  tflm: mAP50 {micro['map50']:.3f}, arena {micro['arena_bytes']:,} B, "
           f"{'bit-identical to' if micro['litert_reference']['identical'] else 'DIFFERENT from'} LiteRT's reference")


if __name__ == "__main__":
    main()
