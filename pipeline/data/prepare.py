"""Materialise the dataset a run trains on: the embedded generated default, a user's YOLO data.yaml
(validated and re-pointed), or a COCO json (converted to the YOLO layout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.data.atomic import atomic_write_text
from pipeline.data.coco import coco_to_yolo
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import build_index
from pipeline.data.synthetic import describe_dataset, generate_dataset
from pipeline.stage_params import DataParams


def _validated_copy(source: Path, out: Path, on_error: str) -> tuple[Path, dict[str, Any]]:
    """Check every image and label of a user's dataset once, then write a data.yaml that points at it."""
    cfg = load_data_yaml(source)
    skipped: dict[str, list[list[str]]] = {}
    for split, folder in (("train", cfg.train), ("val", cfg.val)):
        index = build_index(folder, cfg.nc, on_error)  # raises naming file and line unless on_error == "skip"
        skipped[split] = [[str(path), reason] for path, reason in index.skipped]
    out.mkdir(parents=True, exist_ok=True)
    data_yaml = out / "data.yaml"
    text = yaml.safe_dump({"path": str(cfg.root.resolve()), "train": str(cfg.train.resolve()),
                           "val": str(cfg.val.resolve()), "nc": cfg.nc, "names": list(cfg.names)}, sort_keys=False)
    atomic_write_text(data_yaml, text)
    return data_yaml, {"skipped": skipped}


def prepare_dataset(p: DataParams, out: Path) -> tuple[Path, dict[str, Any]]:
    """Returns (data.yaml path, data report)."""
    extra: dict[str, Any] = {"source": p.source}
    if p.source == "synthetic":
        data_yaml = generate_dataset(out, n_train=p.n_train, n_val=p.n_val, imgsz=p.imgsz, seed=p.seed,
                                     min_size=p.min_object_px, max_size=p.max_object_px)
    elif p.source.endswith(".json"):
        if not p.coco_images:
            raise ValueError(f"data.coco_images must name the images folder of COCO json {p.source}")
        data_yaml = coco_to_yolo(p.source, p.coco_images, out)
    else:
        data_yaml, more = _validated_copy(Path(p.source), out, p.on_error)
        extra.update(more)
    return Path(data_yaml), {**describe_dataset(data_yaml), **extra}
