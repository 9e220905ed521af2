"""Stage `finetune`: recover the accuracy of the pruned student (optionally still distilling: finetune.alpha)."""

from __future__ import annotations

from pipeline.common.seeding import seed_everything
from pipeline.config.params import load_section
from pipeline.config.stages import FinetuneParams
from pipeline.config.train import budget_text
from pipeline.io.model_loader import load_model
from pipeline.model.count import count_params
from pipeline.stage.preflight import check_chain
from pipeline.stage.steps import Steps, stage_args
from pipeline.train.distill import DistillWeights
from pipeline.train.run import train_model


def main() -> None:
    args = stage_args(__doc__, ("data", "data.yaml from the data stage"), ("model", "pruned checkpoint"),
                      ("teacher", "teacher checkpoint (used when finetune.alpha > 0)"),
                      ("out", "fine-tuned checkpoint to write"), ("metrics", "metrics JSON to write"),
                      ("live", "dvclive folder for per-epoch logs"),
                      ("work", "folder for the per-epoch resume checkpoint (not a DVC output)"))
    p = load_section(args.params, "finetune", FinetuneParams)
    check_chain(args.params, args.data)
    seed_everything(p.train.seed)
    step = Steps("finetune", 3)
    step(f"loading {args.model}")
    model, ckpt = load_model(args.model)
    teacher = load_model(args.teacher)[0] if p.alpha > 0 else None
    step(f"fine-tuning {count_params(model):,} params for {budget_text(p.train)}"
         + (f", distilling with alpha={p.alpha}" if teacher is not None else ""))
    result = train_model(model.train(), args.data, p.train, args.out, args.work, teacher=teacher,
                         distill=DistillWeights(p.alpha, p.temperature) if teacher is not None else None,
                         pruning_history=ckpt.get("pruning_history"), log_dir=args.live)
    metrics = {"params": count_params(model), **result.summary()}
    step(f"wrote {args.out}: {metrics}")
    step.write_metrics(args.metrics, metrics)


if __name__ == "__main__":
    main()
