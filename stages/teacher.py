"""Stage `teacher`: train the teacher (`leafyolo_s`), or take `teacher.weights` when the user supplies one.

With `teacher.variant: none` (and no weights) nothing is trained: the stage writes a checkpoint that says so, which
`load_model` refuses with that reason, and the chain trains the student alone (the data stage has checked that
distill.alpha and finetune.alpha are 0)."""

from __future__ import annotations

from pathlib import Path

from pipeline.common.seeding import seed_everything
from pipeline.config.params import load_section
from pipeline.config.stages import TeacherParams
from pipeline.config.train import budget_text
from pipeline.data.data_yaml import load_data_yaml
from pipeline.io.checkpoint import save_checkpoint, write_no_teacher
from pipeline.io.model_loader import load_model
from pipeline.model.count import count_params
from pipeline.model.leafyolo import LeafYOLO
from pipeline.stage.preflight import check_chain
from pipeline.stage.steps import Steps, stage_args
from pipeline.train.run import train_model, validate_checkpoint


def main() -> None:
    args = stage_args(__doc__, ("data", "data.yaml from the data stage"), ("out", "teacher checkpoint to write"),
                      ("metrics", "metrics JSON to write"), ("live", "dvclive folder for per-epoch logs"),
                      ("work", "folder for the per-epoch resume checkpoint (not a DVC output)"))
    p = load_section(args.params, "teacher", TeacherParams)
    check_chain(args.params, args.data)
    seed_everything(p.train.seed)
    data = load_data_yaml(args.data)
    step = Steps("teacher", 2)
    if p.none:
        step("teacher.variant is 'none': no teacher is trained (the student trains alone)")
        write_no_teacher(args.out, "teacher.variant is 'none' in params.yaml")
        Path(args.live, "plots", "metrics").mkdir(parents=True, exist_ok=True)  # the stage's (empty) plots output
        metrics = {"params": 0, "trained": False}
    elif p.weights:
        step(f"taking user checkpoint {p.weights}")
        model, ckpt = load_model(p.weights)  # nc checked against the data by check_chain
        save_checkpoint(args.out, model, data.names, ckpt["imgsz"], ckpt.get("pruning_history"))
        metrics = {"params": count_params(model), "source": p.weights,
                   **validate_checkpoint(model, args.data, int(ckpt["imgsz"]), args.live)}
    else:
        model = LeafYOLO(p.variant, data.nc, act=p.act, seed=p.train.seed)
        step(f"training {p.variant} ({count_params(model):,} params) for {budget_text(p.train)} at {p.train.imgsz}")
        result = train_model(model, args.data, p.train, args.out, args.work,
                             log_dir=args.live)
        metrics = {"params": count_params(model), **result.summary()}
    step(f"wrote {args.out}: {metrics}")
    step.write_metrics(args.metrics, metrics)


if __name__ == "__main__":
    main()
