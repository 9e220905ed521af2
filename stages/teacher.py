"""Stage `teacher`: train the teacher (`leafyolo_s`), or take `teacher.weights` when the user supplies one."""

from __future__ import annotations

from pipeline.checkpoint import count_params, load_model, save_checkpoint
from pipeline.config import load_section
from pipeline.data.data_yaml import load_data_yaml
from pipeline.model.leafyolo import LeafYOLO
from pipeline.reporting import Steps, stage_args
from pipeline.stage_params import TeacherParams
from pipeline.training_run import train_model


def main() -> None:
    args = stage_args(__doc__, ("data", "data.yaml from the data stage"), ("out", "teacher checkpoint to write"),
                      ("metrics", "metrics JSON to write"), ("live", "dvclive folder for per-epoch logs"),
                      ("work", "folder for the per-epoch resume checkpoint (not a DVC output)"))
    p = load_section(args.params, "teacher", TeacherParams)
    data = load_data_yaml(args.data)
    step = Steps("teacher", 2)
    if p.weights:
        step(f"taking user checkpoint {p.weights}")
        model, ckpt = load_model(p.weights)
        if model.nc != data.nc:
            raise ValueError(f"teacher.weights {p.weights} has nc={model.nc}, but {args.data} has nc={data.nc}")
        save_checkpoint(args.out, model, data.names, ckpt["imgsz"], ckpt.get("pruning_history"))
        metrics = {"params": count_params(model), "source": p.weights}
    else:
        model = LeafYOLO(p.variant, data.nc, act=p.act)
        step(f"training {p.variant} ({count_params(model):,} params) for {p.train.epochs} epochs at {p.train.imgsz}")
        result = train_model(model, args.data, p.train, args.out, args.work,
                             log_dir=args.live)
        metrics = {"params": count_params(model), "images_per_second": result.images_per_second, **result.metrics}
    step(f"wrote {args.out}: {metrics}")
    step.write_metrics(args.metrics, metrics)


if __name__ == "__main__":
    main()
