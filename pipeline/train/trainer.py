"""Detection trainer: warmup + cosine LR, EMA, AMP on CUDA, per-epoch checkpoints with resume, optional
distillation from a frozen teacher, dvclive logs, and DistributedDataParallel under torchrun."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from pipeline.common.faults import fault_point
from pipeline.common.seeding import epoch_permutation, seed_everything, seeded
from pipeline.config.train import TrainParams, planned_epochs
from pipeline.data.dataset import collate
from pipeline.io.checkpoint import atomic_torch_save, model_meta, safe_load, save_checkpoint
from pipeline.model.leafyolo import LeafYOLO
from pipeline.train import distributed as dist
from pipeline.train.assigner import TaskAlignedAssigner
from pipeline.train.distill import DistillationLoss, DistillWeights, FeatureAdapters
from pipeline.train.ema import ModelEMA
from pipeline.train.loss import DetectionLoss, LossWeights


@dataclass
class TrainResult:
    model: LeafYOLO  # EMA weights, eval mode
    metrics: dict[str, Any]
    images_per_second: float
    epochs_run: int
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads: results are bit-reproducible for the same count on the same CPU
    epochs: int = 0  # the whole run's epochs (TrainParams.epochs, raised by min_steps), a resumed run's included
    steps: int = 0  # the whole run's optimizer steps

    def summary(self) -> dict[str, Any]:
        """What a training stage records beside its val metrics."""
        return {"images_per_second": self.images_per_second, "device": self.device, "torch_threads": self.threads,
                "train_epochs": self.epochs, "train_steps": self.steps, **self.metrics}


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA when present (or asked for by index / 'cuda'), else CPU."""
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.isdigit():
        requested = f"cuda:{requested}"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} was requested but CUDA is not available")
    return torch.device(requested)


def build_optimizer(model: nn.Module, extra: nn.Module | None, p: TrainParams) -> torch.optim.Optimizer:
    """Weight decay on conv weights only (not on BatchNorm or biases)."""
    decay, no_decay = [], []
    for module in [model] + ([extra] if extra is not None else []):
        for param in module.parameters():
            if not param.requires_grad:
                continue
            (decay if param.ndim > 1 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": p.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if p.optimizer == "AdamW":
        # fused: ATen's own kernel; the default foreach path takes sqrt from MKL, which differs between CPUs
        return torch.optim.AdamW(groups, lr=p.lr0, betas=(p.momentum, 0.999), fused=True)
    return torch.optim.SGD(groups, lr=p.lr0, momentum=p.momentum, nesterov=True)


def warmup_steps(p: TrainParams, steps_per_epoch: int, total_steps: int) -> int:
    """Steps of linear LR warmup: `p.warmup_epochs` epochs, at most half the run."""
    return min(int(p.warmup_epochs * steps_per_epoch), total_steps // 2) if p.warmup_epochs else 0


def lr_at(step: int, total_steps: int, warmup_steps: int, p: TrainParams) -> float:
    """Linear warmup, then cosine decay from lr0 to lr0 * lrf."""
    if step < warmup_steps:
        return p.lr0 * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return p.lr0 * (p.lrf + (1 - p.lrf) * 0.5 * (1 + math.cos(math.pi * progress)))


def fingerprint(params: TrainParams, model: nn.Module, extra: dict[str, Any]) -> str:
    """Identifies a run, so resume only continues a checkpoint of the same settings and starting weights."""
    h = hashlib.sha256(json.dumps({"params": asdict(params), **extra}, sort_keys=True, default=str).encode())
    for value in model.state_dict().values():
        h.update(value.detach().cpu().numpy().tobytes()[:256])
    return h.hexdigest()[:16]


def _log_epoch(live, metrics: dict[str, float]) -> None:
    for k, v in metrics.items():
        live.log_metric(k, v)
    live.next_step()


class EpochShuffle(torch.utils.data.Sampler):
    """Random order per epoch from (seed, epoch), like DistributedSampler for a single process."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter(epoch_permutation(self.n, self.seed, self.epoch))

    def __len__(self) -> int:
        return self.n


class Trainer:
    def __init__(self, model: LeafYOLO, train_set: Dataset, params: TrainParams, names: list[str],
                 work_dir: str | Path, val_set: Dataset | None = None, teacher: LeafYOLO | None = None,
                 distill: DistillWeights | None = None, pruning_history: list | None = None,
                 device: str | None = None, progress: bool = True, log_dir: str | Path | None = None):
        self.p, self.names, self.progress = params, names, progress
        self.work_dir = Path(work_dir)
        self.log_dir = Path(log_dir) if log_dir else None
        self.rank, self.world = dist.setup()
        self.device = dist.device_for_rank(pick_device(device), self.rank)
        self.model = model.to(self.device)
        self.pruning_history = pruning_history or []
        self.train_set, self.val_set = train_set, val_set
        self.teacher = teacher.to(self.device).eval() if teacher is not None else None
        if self.teacher is not None:
            for q in self.teacher.parameters():
                q.requires_grad_(False)
        self.distill_weights = distill if (distill is not None and self.teacher is not None) else None
        with seeded(params.seed):  # the adapters' initial weights, whatever ran before in this process
            self.adapters = self._make_adapters() if self.distill_weights else None
        self.criterion = DetectionLoss(TaskAlignedAssigner(), LossWeights(params.box_weight, params.cls_weight),
                                       model.strides)
        self.distill_loss = DistillationLoss(self.distill_weights, self.adapters) if self.distill_weights else None
        if params.freeze_backbone:
            for q in self.model.backbone.parameters():
                q.requires_grad_(False)

    def _make_adapters(self) -> FeatureAdapters:
        x = torch.zeros(1, 3, 64, 64, device=self.device)
        with torch.no_grad():
            s_ch = [f.shape[1] for f in self.model.forward_train(x)[2]]
            t_ch = [f.shape[1] for f in self.teacher.forward_train(x)[2]]
        return FeatureAdapters(s_ch, t_ch).to(self.device)

    def fit(self, on_step: Callable[[int, float, nn.Module], None] | None = None) -> TrainResult:
        """Train for `p.epochs`, or more epochs when `p.min_steps` asks for more optimizer steps. `on_step(step,
        loss, model)`, when given, runs after every optimizer step (step counted from 0 over all
        epochs); it may raise to end training there (bench.divergence does)."""
        p = self.p
        seed_everything(p.seed + self.rank)
        loader, sampler = self._loader()
        net = dist.wrap(self.model, self.device)
        optimizer = build_optimizer(self.model, self.adapters, p)
        ema = ModelEMA(self.model, p.ema_decay, p.ema_tau)
        scaler = torch.amp.GradScaler("cuda", enabled=p.amp and self.device.type == "cuda")
        fp = fingerprint(p, self.model, {"n_train": len(self.train_set), "distill": str(self.distill_weights),
                                         "world": self.world})
        start_epoch, history = self._maybe_resume(fp, optimizer, ema, scaler)
        steps_per_epoch = len(loader)
        epochs = planned_epochs(p, steps_per_epoch)
        total_steps = epochs * steps_per_epoch
        if self.rank == 0:
            raised = f" (raised from {p.epochs} epochs by min_steps {p.min_steps})" if epochs > p.epochs else ""
            print(f"training {total_steps} optimizer steps: {epochs} epochs of {steps_per_epoch} batches of "
                  f"{loader.batch_size * self.world} images from {len(self.train_set)} training images{raised}",
                  flush=True)
        warmup = warmup_steps(p, steps_per_epoch, total_steps)
        live = self._live(history)
        seen, train_seconds = 0, 0.0
        metrics = dict(history[-1]) if history else {}
        for epoch in range(start_epoch, epochs):
            sampler.set_epoch(epoch)
            if hasattr(self.train_set, "set_epoch"):
                self.train_set.set_epoch(epoch)
            self.model.train()
            t0 = time.perf_counter()
            sums: dict[str, float] = {}
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not (self.progress and self.rank == 0),
                       leave=False, dynamic_ncols=True)
            for i, (imgs, targets, _) in enumerate(bar):
                step = epoch * steps_per_epoch + i
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total_steps, warmup, p)
                parts = self._step(net, imgs, targets, optimizer, scaler)
                ema.update(self.model)
                fault_point("step", step)
                if on_step is not None:
                    on_step(step, parts["loss"], self.model)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                seen += imgs.shape[0] * self.world
                bar.set_postfix(loss=f"{parts['loss']:.3f}")
            train_seconds += time.perf_counter() - t0
            metrics = {f"train/{k}": v / max(1, steps_per_epoch) for k, v in sums.items()}
            metrics["lr"] = optimizer.param_groups[0]["lr"]
            last = epoch == epochs - 1
            if self.val_set is not None and (last or (p.val_every and (epoch + 1) % p.val_every == 0)):
                metrics.update(self.validate(ema.ema))
            history.append(metrics)
            if self.rank == 0:
                self._save_resume(fp, epoch, optimizer, ema, scaler, history)
                if live is not None:
                    _log_epoch(live, metrics)
                shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(("train/loss", "val/map50"))}
                print(f"[epoch {epoch + 1}/{epochs}] {shown} ({time.perf_counter() - t0:.1f}s)", flush=True)
        if live is not None:
            live.end()
        dist.barrier()
        if self.val_set is not None and not metrics:
            metrics = self.validate(ema.ema)  # zero epochs asked for
        ips = seen / train_seconds if train_seconds else 0.0
        return TrainResult(ema.ema.eval(), metrics, ips, epochs - start_epoch, str(self.device),
                           torch.get_num_threads(), epochs, total_steps)

    def _step(self, net: nn.Module, imgs: torch.Tensor, targets: torch.Tensor,
              optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> dict[str, float]:
        imgs = imgs.to(self.device, non_blocking=True)
        targets = targets.to(self.device)
        with torch.autocast(self.device.type, enabled=scaler.is_enabled()):
            boxes, logits, feats = net(imgs)
            det_loss, parts = self.criterion(boxes.float(), logits.float(), targets, imgs.shape[-1])
            loss = det_loss
            if self.distill_loss is not None:
                with torch.no_grad():
                    _, t_logits, t_feats = self.teacher.forward_train(imgs)
                kd, kd_parts = self.distill_loss(logits, t_logits, feats, t_feats)
                a = self.distill_weights.alpha
                loss = a * kd * imgs.shape[0] + (1 - a) * det_loss
                parts.update(kd_parts)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        scaler.step(optimizer)
        scaler.update()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {float(loss)}; lower train.lr0 or check the labels")
        parts["loss"] = float(loss.detach()) / imgs.shape[0]
        return parts

    def validate(self, model: nn.Module) -> dict[str, float]:
        from pipeline.evaluate.evaluator import evaluate
        from pipeline.infer.backends import TorchBackend

        if self.rank != 0:
            return {}
        result = evaluate(TorchBackend(model, device=str(self.device)), self.val_set, progress=self.progress)
        return {"val/map50": float(result["map50"]), "val/map": float(result["map"])}

    def _loader(self) -> tuple[DataLoader, Any]:
        """The data order of epoch e depends on (seed, e) only, so a resumed run trains on the same batches."""
        sampler = dist.sampler(self.train_set, self.p.seed) if self.world > 1 else EpochShuffle(len(self.train_set),
                                                                                               self.p.seed)
        per_rank = max(1, self.p.batch_size // self.world)
        loader = DataLoader(self.train_set, batch_size=per_rank, sampler=sampler, num_workers=self.p.workers,
                            collate_fn=collate, drop_last=len(self.train_set) > per_rank)
        return loader, sampler  # fresh workers each epoch, so the dataset's set_epoch reaches them

    def _live(self, history: list[dict[str, float]]):
        """The per-epoch log, started afresh and refilled from the resume state's `history`: whatever a killed run
        had written (an epoch logged after its resume state was saved, or a half-written row), a resumed run's
        log is the same as an uninterrupted run's."""
        if self.rank != 0 or self.log_dir is None:
            return None
        from dvclive import Live

        live = Live(dir=str(self.log_dir), resume=False, save_dvc_exp=False, dvcyaml=False)
        for metrics in history:
            _log_epoch(live, metrics)
        return live

    @property
    def resume_path(self) -> Path:
        return self.work_dir / "last.pt"

    def _save_resume(self, fp: str, epoch: int, optimizer, ema: ModelEMA, scaler,
                     history: list[dict[str, float]]) -> None:
        state = {"fingerprint": fp, "epoch": epoch, "history": history, "model": self.model.state_dict(),
                 "ema": ema.ema.state_dict(),
                 "ema_updates": ema.updates, "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                 "adapters": self.adapters.state_dict() if self.adapters is not None else None,
                 **model_meta(self.model, self.names, self.p.imgsz, self.pruning_history)}
        atomic_torch_save(state, self.resume_path)

    def _maybe_resume(self, fp: str, optimizer, ema: ModelEMA, scaler) -> tuple[int, list[dict[str, float]]]:
        """(first epoch to train, the metrics of every epoch before it) from the resume state, if it matches."""
        if not self.resume_path.is_file():
            return 0, []
        try:
            state = safe_load(self.resume_path, map_location=self.device)
        except ValueError as exc:
            print(f"ignoring unreadable resume checkpoint {self.resume_path}: {exc}", flush=True)
            return 0, []
        if state.get("fingerprint") != fp or len(state.get("history", [])) != state["epoch"] + 1:
            print(f"resume checkpoint {self.resume_path} belongs to other settings; starting fresh", flush=True)
            return 0, []
        self.model.load_state_dict(state["model"])
        ema.ema.load_state_dict(state["ema"])
        ema.updates = state["ema_updates"]
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        if self.adapters is not None and state.get("adapters"):
            self.adapters.load_state_dict(state["adapters"])
        print(f"resuming from {self.resume_path} after epoch {state['epoch'] + 1}", flush=True)
        return state["epoch"] + 1, list(state["history"])

    def save(self, path: str | Path, result: TrainResult) -> None:
        """Write the deployable checkpoint (EMA weights) and drop the resume state."""
        if self.rank == 0:
            save_checkpoint(path, result.model, self.names, self.p.imgsz, self.pruning_history,
                            train_params=asdict(self.p), metrics=result.metrics)
            self.resume_path.unlink(missing_ok=True)
        dist.barrier()
