"""Stage `distill`: train the student (`leafyolo_u`) with knowledge distillation from the frozen teacher.

loss = alpha * (class-score KL + neck feature imitation) + (1 - alpha) * detection loss; alpha=0 trains alone.
"""

from __future__ import annotations

from pipeline.common.seeding import seed_everything
from pipeline.config.params import load_section
from pipeline.config.stages import DistillParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.io.model_loader import load_model
from pipeline.model.count import count_params
from pipeline.model.leafyolo import LeafYOLO
from pipeline.stage.preflight import check_chain
from pipeline.stage.steps import Steps, stage_args
from pipeline.train.distill import DistillWeights
from pipeline.train.run import train_model


def main() -> None:
    args = stage_args(__doc__, ("data", "data.yaml from the data stage"), ("teacher", "teacher checkpoint"),
                      ("out", "student checkpoint to write"), ("metrics", "metrics JSON to write"),
                      ("live", "dvclive folder for per-epoch logs"),
                      ("work", "folder for the per-epoch resume checkpoint (not a DVC output)"))
    p = load_section(args.params, "distill", DistillParams)
    check_chain(args.params, args.data)
    seed_everything(p.train.seed)
    data = load_data_yaml(args.data)
    step = Steps("distill", 3)
    step(f"loading teacher {args.teacher}")
    teacher, _ = load_model(args.teacher)
    student = LeafYOLO(p.variant, data.nc, act=p.act, seed=p.train.seed)
    weights = DistillWeights(p.alpha, p.temperature, p.cls_weight, p.feat_weight)
    step(f"training {p.variant} ({count_params(student):,} params) for {p.train.epochs} epochs, alpha={p.alpha}")
    result = train_model(student, args.data, p.train, args.out, args.work,
                         teacher=teacher if p.alpha > 0 else None, distill=weights, log_dir=args.live)
    metrics = {"params": count_params(student), "alpha": p.alpha, **result.summary()}
    step(f"wrote {args.out}: {metrics}")
    step.write_metrics(args.metrics, metrics)


if __name__ == "__main__":
    main()
