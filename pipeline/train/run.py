"""One training run from a data.yaml: build the datasets, train (optionally distilling), save the checkpoint.

Shared by the `teacher`, `distill` and `finetune` stages and by the `leafyolo` API.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config.train import TrainParams
from pipeline.data.data_yaml import DataConfig, load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train import distributed as dist
from pipeline.train.distill import DistillWeights
from pipeline.train.trainer import Trainer, TrainResult


def build_datasets(data: DataConfig, p: TrainParams, on_error: str = "raise") -> tuple[YoloDataset, YoloDataset]:
    train = YoloDataset(data.train, data.nc, p.imgsz, augment=p.augment, on_error=on_error, names=data.names,
                        seed=p.seed)
    val = YoloDataset(data.val, data.nc, p.imgsz, augment=None, on_error=on_error, names=data.names)
    return train, val


def validate_checkpoint(model: LeafYOLO, data_yaml: str | Path, imgsz: int, log_dir: str | Path | None) -> dict:
    """val/map50 and val/map of a model trained elsewhere (a user's teacher) on this data, logged as one dvclive
    step in `log_dir` like a training run's, so the stage's plots exist either way."""
    from pipeline.evaluate.evaluator import evaluate
    from pipeline.infer.backends import TorchBackend

    data = load_data_yaml(data_yaml)
    val = YoloDataset(data.val, data.nc, imgsz, augment=None, names=data.names)
    m = evaluate(TorchBackend(model), val, progress=False)
    metrics = {"val/map50": float(m["map50"]), "val/map": float(m["map"])}
    if log_dir is not None:
        from dvclive import Live

        live = Live(dir=str(log_dir), save_dvc_exp=False, dvcyaml=False)
        for k, v in metrics.items():
            live.log_metric(k, v)
        live.next_step()
        live.end()
    return metrics


def train_model(model: LeafYOLO, data_yaml: str | Path, p: TrainParams, out_path: str | Path,
                work_dir: str | Path, teacher: LeafYOLO | None = None, distill: DistillWeights | None = None,
                pruning_history: list | None = None, log_dir: str | Path | None = None,
                device: str | None = None, on_error: str = "raise") -> TrainResult:
    """Train `model` on the dataset of `data_yaml` and write the deployable checkpoint (EMA weights) to `out_path`.

    `work_dir` holds the per-epoch resume checkpoint; an interrupted run with the same settings continues there.
    """
    data = load_data_yaml(data_yaml)
    if model.nc != data.nc:
        raise ValueError(f"model has nc={model.nc} but {data_yaml} declares nc={data.nc}")
    train_set, val_set = build_datasets(data, p, on_error)
    trainer = Trainer(model, train_set, p, data.names, work_dir, val_set=val_set, teacher=teacher,
                      distill=distill, pruning_history=pruning_history, device=device, log_dir=log_dir)
    result = trainer.fit()
    trainer.save(out_path, result)
    dist.cleanup()  # a torchrun process group ends with its run
    return result
