"""Parse a YOLO ``data.yaml`` (path/train/val/nc/names) into a typed :class:`DataConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.data.errors import DatasetError


@dataclass(frozen=True)
class DataConfig:
    """A resolved YOLO dataset description; ``train``/``val`` are image folders."""

    root: Path
    train: Path
    val: Path
    nc: int
    names: list[str]

    def split(self, name: str) -> Path:
        """Image folder of split ``name`` ("train" or "val")."""
        if name not in ("train", "val"):
            raise ValueError(f"unknown split {name!r}; expected 'train' or 'val'")
        return self.train if name == "train" else self.val


def _parse_names(yaml_path: Path, raw: Any) -> list[str]:
    if isinstance(raw, dict):
        try:
            ids = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise DatasetError(yaml_path, f"key 'names': expected integer class ids as keys, got {list(raw)}") from None
        if ids != list(range(len(ids))):
            raise DatasetError(yaml_path, f"key 'names': expected class ids 0..{len(ids) - 1}, got {ids}")
        raw = [raw[k] for k in sorted(raw, key=int)]
    if not isinstance(raw, list) or not raw:
        raise DatasetError(yaml_path, f"key 'names': expected a non-empty list or {{id: name}} mapping, got {raw!r}")
    if not all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in raw):
        raise DatasetError(yaml_path, f"key 'names': expected strings, got {raw!r}")
    return [str(n) for n in raw]


def _split_dir(yaml_path: Path, root: Path, key: str, raw: Any) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        raise DatasetError(yaml_path, f"key '{key}': expected a folder of images (relative to 'path'), got {raw!r}")
    folder = (root / raw).resolve()
    if not folder.is_dir():
        raise DatasetError(yaml_path, f"key '{key}': image folder {folder} does not exist")
    return folder


def load_data_yaml(path: str | Path) -> DataConfig:
    """Read a YOLO data.yaml.

    ``path`` (optional, default: the yaml's folder) is relative to the yaml's folder; ``train``/``val``
    are relative to ``path``. ``nc`` may be omitted (taken from ``names``) but must match it if given.
    """
    yaml_path = Path(path)
    if not yaml_path.is_file():
        raise FileNotFoundError(f"{yaml_path}: data.yaml not found")
    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:  # RecursionError: nested too deep
        raise DatasetError(yaml_path, f"not valid YAML ({e})") from None
    if not isinstance(doc, dict):
        raise DatasetError(yaml_path, "expected a mapping with keys path, train, val, nc, names")
    for key in ("train", "val", "names"):
        if key not in doc:
            raise DatasetError(yaml_path, f"missing key '{key}'")
    raw_root = doc.get("path", ".")
    if not isinstance(raw_root, str):
        raise DatasetError(yaml_path, f"key 'path': expected a folder path, got {raw_root!r}")
    root = (yaml_path.parent / raw_root).resolve()
    if not root.is_dir():
        raise DatasetError(yaml_path, f"key 'path': dataset folder {root} does not exist")
    names = _parse_names(yaml_path, doc["names"])
    nc = doc.get("nc", len(names))
    if not isinstance(nc, int) or isinstance(nc, bool) or nc <= 0:
        raise DatasetError(yaml_path, f"key 'nc': expected a positive integer, got {nc!r}")
    if nc != len(names):
        raise DatasetError(yaml_path, f"key 'nc' is {nc} but 'names' lists {len(names)} classes; expected equal")
    train = _split_dir(yaml_path, root, "train", doc["train"])
    val = _split_dir(yaml_path, root, "val", doc["val"])
    return DataConfig(root=root, train=train, val=val, nc=nc, names=names)


def dump_data_yaml(nc: int, names: list[str], train: str = "images/train", val: str = "images/val") -> str:
    """Text of a data.yaml with ``path: .`` (so the folder can be moved)."""
    doc = {"path": ".", "train": train, "val": val, "nc": nc, "names": {i: n for i, n in enumerate(names)}}
    return yaml.safe_dump(doc, sort_keys=False)
