"""Stage `distill`: train the student (`leafyolo_u`) with knowledge distillation from the frozen teacher.

loss = alpha * (class-score KL + neck feature imitation) + (1 - alpha) * detection loss; alpha=0 trains alone.
With alpha > 0 the teacher is scored on val first (`teacher/map50` in the metrics, beside the student's
`val/map50`); one under `distill.min_teacher_map50` stops the stage before any student epoch.
"""

from __future__ import annotations

import sys

from pipeline.common.seeding import seed_everything
from pipeline.config.params import load_section
from pipeline.config.stages import DistillParams, TeacherParams
from pipeline.config.train import budget_text
from pipeline.data.data_yaml import load_data_yaml
from pipeline.io.model_loader import load_model
from pipeline.model.count import count_params
from pipeline.model.leafyolo import LeafYOLO
from pipeline.stage.preflight import check_chain
from pipeline.stage.steps import Steps, stage_args
from pipeline.train.distill import DistillWeights
from pipeline.train.run import train_model
from pipeline.train.teacher_floor import TeacherBelowFloor, check_teacher_floor, teacher_scores


def main() -> int:
    args = stage_args(__doc__, ("data", "data.yaml from the data stage"), ("teacher", "teacher checkpoint"),
                      ("out", "student checkpoint to write"), ("metrics", "metrics JSON to write"),
                      ("live", "dvclive folder for per-epoch logs"),
                      ("work", "folder for the per-epoch resume checkpoint (not a DVC output)"))
    p = load_section(args.params, "distill", DistillParams)
    check_chain(args.params, args.data)
    seed_everything(p.train.seed)
    data = load_data_yaml(args.data)
    step = Steps("distill", 4 if p.alpha > 0 else 3)
    scores: dict[str, float] = {}
    teacher = None
    if p.alpha > 0:
        step(f"loading teacher {args.teacher}")
        teacher, _ = load_model(args.teacher)
        step(f"scoring the teacher on val at {p.train.imgsz}px (floor distill.min_teacher_map50 = "
             f"{p.min_teacher_map50:g})")
        scores = teacher_scores(teacher, args.data, p.train.imgsz)
        try:
            check_teacher_floor(scores["teacher/map50"], p.min_teacher_map50, args.teacher,
                                load_section(args.params, "teacher", TeacherParams).train.min_steps)
        except TeacherBelowFloor as exc:
            print(f"distill stopped: {exc}", file=sys.stderr, flush=True)
            return 1
    else:
        step("alpha is 0: training the student alone, the teacher is neither loaded nor scored")
    student = LeafYOLO(p.variant, data.nc, act=p.act, seed=p.train.seed)
    weights = DistillWeights(p.alpha, p.temperature, p.cls_weight, p.feat_weight)
    step(f"training {p.variant} ({count_params(student):,} params) for {budget_text(p.train)}, alpha={p.alpha}")
    result = train_model(student, args.data, p.train, args.out, args.work,
                         teacher=teacher, distill=weights, log_dir=args.live)
    metrics = {"params": count_params(student), "alpha": p.alpha, **scores, **result.summary()}
    step(f"wrote {args.out}: {metrics}")
    step.write_metrics(args.metrics, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
