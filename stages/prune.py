"""Stage `prune`: structured pruning of the distilled student with torch-pruning.

`prune.sparsity` is the fraction of parameters removed (landed within 0.02); the head's output convs are kept.
The checkpoint stores the pruning history, so later stages rebuild the pruned architecture from it.
"""

from __future__ import annotations

from pipeline.compress.prune import prune
from pipeline.config.params import load_section
from pipeline.config.seeding import warm_up_math_kernels
from pipeline.config.stages import PruneParams
from pipeline.io.checkpoint import save_checkpoint
from pipeline.io.model_loader import load_model
from pipeline.stage.steps import Steps, stage_args


def main() -> None:
    args = stage_args(__doc__, ("model", "distilled student checkpoint"), ("out", "pruned checkpoint to write"),
                      ("metrics", "metrics JSON to write"))
    p = load_section(args.params, "prune", PruneParams)
    warm_up_math_kernels()
    step = Steps("prune", 3)
    step(f"loading {args.model}")
    model, ckpt = load_model(args.model)
    step(f"pruning {p.sparsity:.0%} of the parameters ({p.importance} importance)")
    result = prune(model, p.sparsity, ckpt["imgsz"], importance=p.importance)
    history = list(ckpt.get("pruning_history") or []) + list(result.pruning_history)
    save_checkpoint(args.out, result.model, ckpt["names"], ckpt["imgsz"], history)
    metrics = {"params_before": result.params_before, "params_after": result.params_after,
               "flops_before": result.flops_before, "flops_after": result.flops_after,
               "target_sparsity": p.sparsity, "achieved_sparsity": result.achieved_sparsity}
    step(f"params {result.params_before:,} -> {result.params_after:,} "
         f"({result.achieved_sparsity:.3f} removed), FLOPs {result.flops_before:,} -> {result.flops_after:,}")
    step.write_metrics(args.metrics, metrics)


if __name__ == "__main__":
    main()
