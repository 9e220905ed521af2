"""`LEAFYOLO`: the user-facing model, an `nn.Module` facade over `pipeline/` (the code the DVC stages run).

    LEAFYOLO('detect', variant='leafyolo_u', nc=80)   # a new model (also LEAFYOLO('leafyolo_s'))
    LEAFYOLO('runs/train/exp/model.pt')               # any checkpoint: API runs and every DVC stage, pruned too
    LEAFYOLO('model.onnx') / LEAFYOLO('model.tflite') # predict and val only
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from leafyolo.metadata import sidecar_path
from leafyolo.options import (
    DEFAULT_IMGSZ,
    ExportOptions,
    PredictOptions,
    TrainOptions,
    ValOptions,
    options_doc,
    parse_options,
)
from leafyolo.training import run as run_training
from pipeline.common.seeding import warm_up_math_kernels
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.evaluate.evaluator import evaluate
from pipeline.infer.backends import TorchBackend, open_model
from pipeline.infer.predict import Detections, predict
from pipeline.io.checkpoint import atomic_torch_save, read_checkpoint, save_checkpoint
from pipeline.io.model_loader import load_model
from pipeline.model.fuse import fuse_conv_bn, is_fused
from pipeline.model.leafyolo import LeafYOLO
from pipeline.model.script import scriptable
from pipeline.model.variants import VARIANTS
from pipeline.train.trainer import pick_device

TORCH_SUFFIXES = (".pt", ".pth")
FILE_SUFFIXES = (".onnx", ".tflite")


class LEAFYOLO(nn.Module):
    """A LEAF-YOLO detector built new, loaded from a checkpoint, or wrapping an ONNX / TFLite file."""

    task = "detect"

    def __init__(self, model: str | Path | nn.Module = "detect", variant: str = "leafyolo_u", nc: int = 80,
                 names: list[str] | None = None, act: str = "relu", imgsz: int | None = None, seed: int = 0):
        super().__init__()
        warm_up_math_kernels()  # torch's first vector-math call per thread can be inexact (pipeline/common/seeding.py)
        self.names: list[str] = []
        self.imgsz = imgsz or DEFAULT_IMGSZ
        self.pruning_history: list = []
        self.ckpt_path: Path | None = None  # the checkpoint this model's weights came from
        self.path: Path | None = None  # the ONNX / TFLite file of a file-backed model
        self.data: str | None = None  # the data.yaml it was last trained on (default for val / INT8 calibration)
        self.fused = False
        self.backend = None
        self.model: LeafYOLO | None = None
        if isinstance(model, LeafYOLO):
            self.model = model
        elif isinstance(model, nn.Module):
            raise ValueError(f"LEAFYOLO wraps a pipeline LeafYOLO module, got {type(model).__name__}")
        elif str(model) == "detect" or str(model) in VARIANTS:
            self.model = LeafYOLO(variant if str(model) == "detect" else str(model), nc, act=act, seed=seed)
        else:
            self._load(Path(model), imgsz)
        if self.model is not None:
            self.model.eval()
            self.fused = is_fused(self.model)
        if names is not None:
            if self.model is not None and len(names) != self.model.nc:
                raise ValueError(f"names lists {len(names)} classes but the model predicts {self.model.nc}")
            self.names = [str(n) for n in names]
        elif not self.names and self.model is not None:
            self.names = [str(i) for i in range(self.model.nc)]

    # --- construction -----------------------------------------------------------------------------------

    def _load(self, path: Path, imgsz: int | None) -> None:
        suffix = path.suffix.lower()
        if suffix not in TORCH_SUFFIXES + FILE_SUFFIXES:
            raise ValueError(f"LEAFYOLO({str(path)!r}): expected 'detect', a variant name {sorted(VARIANTS)}, "
                             f"or a .pt / .onnx / .tflite file")
        if not path.is_file():
            raise FileNotFoundError(f"LEAFYOLO: model file not found: {path}")
        if suffix in TORCH_SUFFIXES:
            self.model, ckpt = load_model(path)
            self.names, self.imgsz = list(ckpt["names"]), imgsz or int(ckpt["imgsz"])
            self.pruning_history = list(ckpt.get("pruning_history") or [])
            self.ckpt_path, self.data = path, ckpt.get("data")
            return
        self.path = path
        self.backend = open_model(path, imgsz=imgsz)
        if suffix == ".onnx":
            if "detections" in self.backend.output_names:
                raise ValueError(f"{path} was exported with include_nms=True (one `detections` output); predict and "
                                 f"val need the raw graph (boxes, scores): export with include_nms=False")
        meta = dict(self.backend.metadata)  # what the file carries (the pipeline's files all carry names)
        side = sidecar_path(path)
        if not meta and side.is_file():  # a TFLite exported by an older version: `<file>.json` beside it
            meta = json.loads(side.read_text())
        if meta.get("names"):  # decoded already: backend.metadata and the sidecar are JSON
            self.names = [str(n) for n in meta["names"]]
        self.imgsz = int(self.backend.imgsz or meta.get("imgsz") or DEFAULT_IMGSZ)
        self.data = meta.get("data") or None

    def torch_module(self, verb: str) -> LeafYOLO:
        """The PyTorch module, or a ValueError saying that `verb` needs one (this model wraps an ONNX / TFLite file)."""
        if self.model is None:
            raise ValueError(f"{verb} needs a PyTorch model (.pt or a variant name); {self.path} is a "
                             f"{self.path.suffix} file, which supports predict and val only")
        return self.model

    def trainable_module(self, verb: str) -> LeafYOLO:
        """The PyTorch module when it can still be trained or pruned (not fused), else a ValueError naming `verb`."""
        model = self.torch_module(verb)
        if self.fused:
            raise ValueError(f"{verb}: this model was fused (BatchNorm folded, for inference only); "
                             f"reload it from its checkpoint to {verb}")
        return model

    # --- properties ------------------------------------------------------------------------------------

    @property
    def nc(self) -> int:
        return self.model.nc if self.model is not None else len(self.names)

    @property
    def variant(self) -> str | None:
        return self.model.variant if self.model is not None else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(boxes [B, N, 4] ltrb pixel distances, scores [B, N, nc]) as in CONTRACTS.md."""
        return self.torch_module("forward")(x)

    def __prepare_scriptable__(self) -> nn.Module:
        """`torch.jit.script(model)` compiles a copy of the PyTorch module this facade wraps (its Python stays out)."""
        return scriptable(self.torch_module("torch.jit.script"))

    def __repr__(self) -> str:
        what = f"{self.variant}, nc={self.nc}" if self.model is not None else str(self.path)
        return f"LEAFYOLO({what}, imgsz={self.imgsz}{', fused' if self.fused else ''})"

    # --- verbs -----------------------------------------------------------------------------------------

    def train(self, data: Any = None, **kwargs: Any):
        """Train from the current weights (see `leafyolo.options.TrainOptions` for every argument).

        Returns {'path': checkpoint written, 'val/map50', 'val/map', ...}; the model then holds the trained
        (EMA) weights, so the next `train` call continues from them (the progressive recipe).
        `model.train(False)` / `model.eval()` keep their nn.Module meaning.
        """
        if isinstance(data, bool) and not kwargs:
            return nn.Module.train(self, data)
        if data is not None:
            kwargs["data"] = data
        o = parse_options(TrainOptions, kwargs, "train")
        self.trainable_module("train")
        if isinstance(o.teacher, LEAFYOLO):
            o = replace(o, teacher=o.teacher.torch_module("a teacher"))
        result, ckpt_path, names, imgsz = run_training(self.model, self.pruning_history, self.imgsz, o)
        self.model = result.model.cpu().eval()
        for p in self.model.parameters():  # the EMA copy comes back frozen; the next stage trains it again
            p.requires_grad_(True)
        self.names, self.imgsz, self.ckpt_path = names, imgsz, ckpt_path
        self.data = str(Path(o.data).resolve())
        ckpt = read_checkpoint(ckpt_path)
        atomic_torch_save({**ckpt, "data": self.data}, ckpt_path)  # default data for val / INT8 export later
        return {"path": str(ckpt_path), "epochs_run": result.epochs_run, **result.metrics}

    def predict(self, source: Any, **kwargs: Any) -> list[Detections]:
        """Detect objects in a path, folder, glob, PIL image, HWC uint8 RGB array, or a list of those.

        Returns one `Detections` per image: boxes (xyxy, original pixels), scores, classes, names, labels,
        `.plot()` and `.save(path)`.
        """
        o = parse_options(PredictOptions, kwargs, "predict")
        size = self._size(o.img_size)
        return predict(self._backend(o.device), source, conf_thres=o.conf, iou_thres=o.iou, names=self.names,
                       imgsz=size, max_det=o.max_det, batch_size=o.batch_size)

    def val(self, **kwargs: Any) -> dict[str, Any]:
        """COCO mAP on a split of a data.yaml: {'mAP50', 'mAP50-95', 'per_class': {name: {'AP50', 'AP50-95',
        'instances'}}, 'images', 'seconds'}."""
        o = parse_options(ValOptions, kwargs, "val")
        data_yaml = o.data or self.data
        if not data_yaml:
            raise ValueError("LEAFYOLO.val() needs data='path/to/data.yaml' (this model has no training data recorded)")
        data = load_data_yaml(data_yaml)
        if self.model is not None and self.model.nc != data.nc:
            raise ValueError(f"the model predicts {self.model.nc} classes but {data_yaml} has nc={data.nc}")
        size = self._size(o.img_size)
        dataset = YoloDataset(data.split(o.split), data.nc, size, augment=None, names=data.names)
        m = evaluate(self._backend(o.device), dataset, conf_thres=o.conf, iou_thres=o.iou, batch_size=o.batch_size,
                     progress=False, names=data.names)
        per_class = {k: {"AP50": v["ap50"], "AP50-95": v["ap"], "instances": v["n_gt"]}
                     for k, v in m["per_class"].items()}
        return {"mAP50": m["map50"], "mAP50-95": m["map"], "per_class": per_class, "images": m["images"],
                "seconds": m["seconds"]}

    def export(self, **kwargs: Any) -> str:
        """Write ONNX, TFLite or TorchScript (see `leafyolo.options.ExportOptions`); prints the file size, returns
        the path."""
        from leafyolo.exporting import export_model

        o = parse_options(ExportOptions, kwargs, "export")
        model = self.torch_module("export")
        return str(export_model(model, o, self.names, self.imgsz, self.data, self.ckpt_path))

    def fuse(self) -> LEAFYOLO:
        """Fold every Conv+BatchNorm pair (the activation stays after the fused conv), in place, for inference."""
        n = fuse_conv_bn(self.torch_module("fuse"))
        self.fused = True
        print(f"fused {n} Conv+BatchNorm pairs")
        return self

    def info(self, img_size: int | None = None, verbose: bool = True) -> dict[str, Any]:
        """Parameters, FLOPs and a layer summary (or, for an ONNX / TFLite file, its inputs and outputs)."""
        from leafyolo.summary import file_info, model_info

        if self.model is None:
            return file_info(self.path, self.backend, self.imgsz, self.names, verbose)
        return model_info(self.model, self._size(img_size), self.fused, bool(self.pruning_history), verbose)

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint that `LEAFYOLO(path)` and every DVC stage can load (pruned models included)."""
        model = self.trainable_module("save")
        save_checkpoint(path, model, self.names, self.imgsz, self.pruning_history,
                        **({"data": self.data} if self.data else {}))
        self.ckpt_path = Path(path)
        return Path(path)

    # --- helpers ---------------------------------------------------------------------------------------

    def _size(self, requested: int | None) -> int:
        if requested and self.backend is not None and self.backend.imgsz and requested != self.backend.imgsz:
            raise ValueError(f"{self.path} has a fixed input size of {self.backend.imgsz}px; got img_size={requested}")
        size = int(requested or self.imgsz)
        if size % 32:
            raise ValueError(f"img_size must be a multiple of 32, got {size}")
        return size

    def _backend(self, device: str | None):
        if self.backend is not None:
            return self.backend
        return TorchBackend(self.model, device=str(pick_device(device or "cpu")), name=f"torch:{self.variant}")


for _verb, _options in (("train", TrainOptions), ("predict", PredictOptions), ("val", ValOptions),
                        ("export", ExportOptions)):
    _method = getattr(LEAFYOLO, _verb)
    _method.__doc__ = _method.__doc__.rstrip() + "\n" + options_doc(_options)
