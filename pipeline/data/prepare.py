"""Materialise the dataset a run trains on: the embedded generated default, a user's YOLO data.yaml
(validated and re-pointed), or a COCO json (converted to the YOLO layout)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.stages import DataParams
from pipeline.data.coco import coco_to_yolo
from pipeline.data.data_yaml import DataConfig, load_data_yaml
from pipeline.data.dataset import build_index
from pipeline.data.errors import DatasetError
from pipeline.data.inputs import check_dep_covers
from pipeline.data.labels import label_path_for, list_images
from pipeline.data.synthetic import describe_dataset, generate_dataset
from pipeline.io.atomic import atomic_write_text

MANIFEST = "manifest.json"


def input_paths(p: DataParams) -> dict[str, Path]:
    """What the data stage reads from outside the project, by role: these must lie inside `data.dep`."""
    if p.source == "synthetic":
        return {}
    source = Path(p.source)
    if p.source.endswith(".json"):
        return {"the COCO json data.source": source, "its images folder data.coco_images": Path(p.coco_images)}
    cfg = load_data_yaml(source)
    paths = {"data.source": source}
    for split in ("train", "val"):
        folder = cfg.split(split)
        paths[f"the {split} images"] = folder
        try:
            paths[f"the {split} labels"] = label_path_for(folder / "x.png").parent
        except DatasetError:
            raise DatasetError(source, f"key '{split}': {folder} is not an 'images' folder nor inside one; expected "
                               "the YOLO layout .../images/<split>, labels in .../labels/<split>") from None
    return paths


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(cfg: DataConfig, out: Path) -> dict[str, int]:
    """`out/manifest.json`: path (relative to the dataset root), size and md5 of every image and label file.

    The data stage's output then changes whenever a file of the user's dataset does, so DVC re-runs the stages
    that train on it (the output itself only points at the user's folders)."""
    entries = []
    for split in ("train", "val"):
        for image in list_images(cfg.split(split)):
            for path in (image, label_path_for(image)):
                if path.is_file():
                    rel = path.resolve().relative_to(cfg.root) if cfg.root in path.resolve().parents else path.resolve()
                    entries.append([str(rel), path.stat().st_size, _md5(path)])
    atomic_write_text(out / MANIFEST, json.dumps({"root": str(cfg.root), "files": entries}, indent=0) + "\n")
    return {"files": len(entries), "bytes": sum(e[1] for e in entries)}


def _validated_copy(source: Path, out: Path, on_error: str) -> tuple[Path, dict[str, Any]]:
    """Check every image and label of a user's dataset once, then write a data.yaml that points at it and the
    manifest of its files."""
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
    return data_yaml, {"skipped": skipped, "manifest": write_manifest(cfg, out)}


def prepare_dataset(p: DataParams, out: Path) -> tuple[Path, dict[str, Any]]:
    """Returns (data.yaml path, data report). Fails before any work when `data.dep` misses an input."""
    check_dep_covers(p.dep, input_paths(p), "data.dep")
    extra: dict[str, Any] = {"source": p.source}
    if p.source == "synthetic":
        data_yaml = generate_dataset(out, n_train=p.n_train, n_val=p.n_val, imgsz=p.imgsz, seed=p.seed,
                                     min_size=p.min_object_px, max_size=p.max_object_px, max_clutter=p.max_clutter,
                                     max_objects=p.max_objects)
    elif p.source.endswith(".json"):
        if not p.coco_images:
            raise ValueError(f"data.coco_images must name the images folder of COCO json {p.source}")
        data_yaml = coco_to_yolo(p.source, p.coco_images, out)
    else:
        data_yaml, more = _validated_copy(Path(p.source), out, p.on_error)
        extra.update(more)
    return Path(data_yaml), {**describe_dataset(data_yaml), **extra}
