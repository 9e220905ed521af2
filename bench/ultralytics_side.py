"""The Ultralytics half of the comparisons. Runs ONLY in the bench environment (`.venv-bench`, see
`scripts/bench_env.sh`: Ultralytics needs torchvision, which does not load beside the project's CPU torch build),
called as a subprocess through bench/ultralytics_env.py: `export` by bench/deploy_compare.py (and bench/tflm_arena.py
through deploy_compare.build_fp32), `train` by bench/accuracy_compare.py (the BCCD comparison). Offline: no hub, no fonts, no
plots, no weight downloads (models are built from their yaml).

    python bench/ultralytics_side.py export --cfg yolov8n.yaml --nc 80 --imgsz 320 --out m.onnx [--weights w.pt]
    python bench/ultralytics_side.py train --cfg yolov8n.yaml --data data.yaml --imgsz 192 --epochs 14 --batch 8 \
        --workdir DIR --out m.onnx [--seconds 900]
    python bench/ultralytics_side.py throughput --cfg yolov8n.yaml --data data.yaml --imgsz 128 --epochs 2 --batch 32 \
        --workdir DIR [--threads 2]

Export writes the same graph contract as the LEAF-YOLO exports (CONTRACTS.md): input `images` [1,3,S,S] in [0,1],
outputs `boxes` [1,N,4] (left, top, right, bottom distances in pixels from the anchor points, strides 8/16/32) and
`scores` [1,N,nc] (sigmoid); decoding and NMS stay outside, so both detectors go through the same onnx2tf path and
the same evaluator. Prints one JSON line: params, GFLOPs (torch FlopCounterMode, 2 x MACs) and, after training,
training time and images per second.
"""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_OFFLINE", "1")  # before ultralytics is imported: no connectivity checks
os.environ.setdefault("YOLO_VERBOSE", "False")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402


class SplitHead(nn.Module):
    """The Ultralytics detector up to its Detect head, returning (boxes ltrb px [B,N,4], scores [B,N,nc])."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ultralytics.utils.tal import make_anchors

        layers = self.model.model
        y: list = []
        for m in layers[:-1]:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.model.save else None)
        det = layers[-1]
        feats = [y[j] for j in det.f]
        preds = det.forward_head(feats, **det.one2many)
        _, strides = make_anchors(feats, det.stride, 0.5)  # [N, 1]
        dist = det.dfl(preds["boxes"]) * strides.transpose(0, 1)  # [B, 4, N] in pixels
        return dist.transpose(1, 2), preds["scores"].sigmoid().transpose(1, 2)


def build(cfg: str, nc: int, weights: str | None) -> nn.Module:
    from ultralytics.nn.tasks import DetectionModel

    if weights:
        ckpt = torch.load(weights, map_location="cpu", weights_only=False)
        model = (ckpt.get("ema") or ckpt["model"]).float()
    else:
        model = DetectionModel(cfg, nc=nc, verbose=False)
    model.eval()
    for m in model.modules():  # fuse nothing; keep BN so both exporters see comparable graphs (onnxsim folds BN)
        if hasattr(m, "inplace"):
            m.inplace = False
    return SplitHead(model).eval()


def gflops(model: nn.Module, imgsz: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, imgsz, imgsz))
    return counter.get_total_flops() / 1e9


def export(model: nn.Module, imgsz: int, out: Path) -> dict:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with torch.no_grad():
        torch.onnx.export(model, (torch.zeros(1, 3, imgsz, imgsz),), str(tmp), dynamo=False, opset_version=13,
                          input_names=["images"], output_names=["boxes", "scores"], do_constant_folding=True)
    tmp.replace(out)
    return {"onnx": str(out), "params": sum(p.numel() for p in model.parameters()), "gflops": gflops(model, imgsz)}


def quiet_settings() -> None:
    """No telemetry, no logger integrations (Ultralytics' SETTINGS, for train and throughput alike)."""
    from ultralytics.utils import SETTINGS

    off = ("sync", "wandb", "mlflow", "clearml", "comet", "dvc", "tensorboard", "neptune", "raytune", "hub")
    SETTINGS.update({k: False for k in off if k in SETTINGS})


def train(args: argparse.Namespace) -> dict:
    from ultralytics import YOLO

    quiet_settings()
    work = Path(args.workdir).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    model = YOLO(args.cfg)
    t0 = time.perf_counter()
    budget = {"time": args.seconds / 3600} if args.seconds else {}  # Ultralytics fits its epochs into the time
    model.train(data=args.data, imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, device="cpu",
                workers=0, project=str(work), name="train", exist_ok=True, plots=False, amp=False, seed=args.seed,
                deterministic=True, pretrained=False, val=True, verbose=False, cache=False, **budget)
    seconds = time.perf_counter() - t0
    trainer = model.trainer
    n_train = len(trainer.train_loader.dataset)
    epochs = int(trainer.epoch) + 1
    weights = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)
    return {"weights": str(weights), "train_seconds": seconds, "epochs": epochs, "n_train": n_train,
            "images_per_second": n_train * epochs / seconds,
            "ultralytics_map50": float(trainer.metrics.get("metrics/mAP50(B)", float("nan")))}


def throughput(args: argparse.Namespace) -> dict:
    """Training images per second of the epochs' batch loops only (Ultralytics' on_train_epoch_start/_end callbacks:
    its data loading, forward, loss, backward, optimizer and EMA; setup and validation excluded), no mosaic."""
    from ultralytics import YOLO

    torch.set_num_threads(args.threads)
    quiet_settings()
    work = Path(args.workdir).resolve()
    shutil.rmtree(work, ignore_errors=True)
    model = YOLO(args.cfg)
    epochs: list[float] = []
    model.add_callback("on_train_epoch_start", lambda trainer: epochs.append(-time.perf_counter()))
    model.add_callback("on_train_epoch_end", lambda trainer: epochs.__setitem__(-1, epochs[-1] + time.perf_counter()))
    model.train(data=args.data, imgsz=args.imgsz, epochs=args.epochs, batch=args.batch, device="cpu", workers=0,
                project=str(work), name="train", exist_ok=True, plots=False, amp=False, seed=0, deterministic=True,
                pretrained=False, val=False, verbose=False, cache=False, mosaic=0.0, close_mosaic=0)
    n_train = len(model.trainer.train_loader.dataset)
    seconds = sum(epochs)
    return {"epochs": len(epochs), "n_train": n_train, "train_seconds": seconds,
            "images_per_second": n_train * len(epochs) / seconds, "threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in model.model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--cfg", required=True)
    e.add_argument("--nc", type=int, default=80)
    e.add_argument("--weights", default=None)
    e.add_argument("--imgsz", type=int, required=True)
    e.add_argument("--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("--cfg", required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--imgsz", type=int, required=True)
    t.add_argument("--epochs", type=int, required=True)
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--seconds", type=float, default=0.0, help="train for this wall-clock time instead of --epochs")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workdir", required=True)
    t.add_argument("--out", required=True)
    h = sub.add_parser("throughput")
    h.add_argument("--cfg", required=True)
    h.add_argument("--data", required=True)
    h.add_argument("--imgsz", type=int, required=True)
    h.add_argument("--epochs", type=int, default=2)
    h.add_argument("--batch", type=int, default=32)
    h.add_argument("--threads", type=int, default=2)
    h.add_argument("--workdir", required=True)
    args = parser.parse_args()
    if args.cmd == "throughput":
        print("RESULT " + json.dumps(throughput(args)), flush=True)
        return
    if args.cmd == "export":
        result = export(build(args.cfg, args.nc, args.weights), args.imgsz, Path(args.out))
    else:
        result = train(args)
        result.update(export(build(args.cfg, 0, result["weights"]), args.imgsz, Path(args.out)))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
