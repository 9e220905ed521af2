"""Stage `prune`: structured pruning of the distilled student with torch-pruning.

`prune.sparsity` is the fraction of parameters removed (landed within 0.02); the head's output convs are kept.
`prune.round_to` > 1 keeps every pruned group's channel count a multiple of it.
The checkpoint stores the pruning history, so later stages rebuild the pruned architecture from it.
"""

from __future__ import annotations

from pipeline.common.seeding import warm_up_math_kernels
from pipeline.compress.bytes_model import fit_for
from pipeline.compress.prune import prune, prune_to_bytes
from pipeline.config.params import load_section
from pipeline.config.stages import PruneParams, TfliteParams
from pipeline.io.checkpoint import save_checkpoint
from pipeline.io.model_loader import load_model
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("model", "distilled student checkpoint"), ("out", "pruned checkpoint to write"),
                      ("metrics", "metrics JSON to write"))
    p = load_section(args.params, "prune", PruneParams)
    quant_type = load_section(args.params, "tflite", TfliteParams).quant_type  # the bytes model depends on it
    warm_up_math_kernels()
    step = Steps("prune", 3)
    step(f"loading {args.model}")
    model, ckpt = load_model(args.model)
    extra = {}
    if p.target_bytes:
        fit = fit_for(model.variant, quant_type)  # fails now, before any search, for a variant without a bytes model
        step(f"pruning to a {p.target_bytes:,}-byte INT8 file ({quant_type} scales, {p.importance} importance)")
        result, predicted = prune_to_bytes(model, p.target_bytes, ckpt["imgsz"], fit, importance=p.importance,
                                           round_to=p.round_to)
        extra = {"target_bytes": p.target_bytes, "predicted_tflite_bytes": round(predicted)}
    else:
        step(f"pruning {p.sparsity:.0%} of the parameters ({p.importance} importance)")
        result = prune(model, p.sparsity, ckpt["imgsz"], importance=p.importance, round_to=p.round_to)
    history = list(ckpt.get("pruning_history") or []) + list(result.pruning_history)
    save_checkpoint(args.out, result.model, ckpt["names"], ckpt["imgsz"], history)
    metrics = {"params_before": result.params_before, "params_after": result.params_after,
               "flops_before": result.flops_before, "flops_after": result.flops_after,
               "target_sparsity": p.sparsity if not p.target_bytes else None,
               "achieved_sparsity": result.achieved_sparsity, "round_to": p.round_to, **extra}
    step(f"params {result.params_before:,} -> {result.params_after:,} "
         f"({result.achieved_sparsity:.3f} removed), FLOPs {result.flops_before:,} -> {result.flops_after:,}")
    step.write_metrics(args.metrics, metrics)


if __name__ == "__main__":
    main()
