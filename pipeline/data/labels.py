"""YOLO label files (``cls cx cy w h`` normalised) and image reading, with strict validation."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipeline.data.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
EPS = 1e-6
_IMAGE = "expected a readable image file"
_EXPECTED = "expected 'cls cx cy w h' (integer class, four numbers normalised to [0, 1])"


def list_images(images_dir: str | Path) -> list[Path]:
    """Sorted image files directly inside ``images_dir``."""
    folder = Path(images_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def label_path_for(image_path: str | Path) -> Path:
    """``.../images/<split>/x.jpg`` -> ``.../labels/<split>/x.txt`` (the last ``images`` component is swapped)."""
    p = Path(image_path)
    parts = list(p.parts)
    idx = max((i for i, part in enumerate(parts[:-1]) if part == "images"), default=None)
    if idx is None:
        raise DatasetError(p, "no 'images' folder in the path; expected the YOLO layout .../images/<split>/<file>")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def _parse_line(path: Path, lineno: int, line: str, nc: int) -> list[float]:
    fields = line.split()
    if len(fields) != 5:
        raise DatasetError(path, f"{len(fields)} fields; {_EXPECTED}", lineno)
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise DatasetError(path, f"non-numeric field in {line.strip()!r}; {_EXPECTED}", lineno) from None
    if not all(math.isfinite(v) for v in values):
        raise DatasetError(path, f"non-finite value in {line.strip()!r}; {_EXPECTED}", lineno)
    cls, cx, cy, w, h = values
    if cls != int(cls) or not 0 <= cls < nc:
        raise DatasetError(path, f"class id {fields[0]!r}; expected an integer in [0, {nc - 1}]", lineno)
    if w <= 0 or h <= 0:
        raise DatasetError(path, f"box width/height {w}, {h}; expected both > 0", lineno)
    lo, hi = -EPS, 1 + EPS
    if not (lo <= cx - w / 2 and cx + w / 2 <= hi and lo <= cy - h / 2 and cy + h / 2 <= hi):
        raise DatasetError(path, f"box (cx={cx}, cy={cy}, w={w}, h={h}) extends outside the image; expected "
                           "normalised coordinates with the whole box in [0, 1]", lineno)
    return values


def parse_labels(path: str | Path, nc: int) -> np.ndarray:
    """Read a label file -> float32 ``[n, 5]`` (cls, cx, cy, w, h), boxes clipped to [0, 1].

    A missing file means an image without objects (standard YOLO); blank lines are ignored.
    """
    path = Path(path)
    if not path.exists():
        return np.zeros((0, 5), dtype=np.float32)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark (Windows editors write one) is not data
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(path, f"cannot read label file ({e}); expected UTF-8 text") from None
    rows = [_parse_line(path, i, line, nc) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    out = np.asarray(rows, dtype=np.float32).reshape(-1, 5)
    if len(out):  # clip the eps overshoot so downstream boxes are exactly inside
        x1 = np.clip(out[:, 1] - out[:, 3] / 2, 0, 1)
        y1 = np.clip(out[:, 2] - out[:, 4] / 2, 0, 1)
        x2 = np.clip(out[:, 1] + out[:, 3] / 2, 0, 1)
        y2 = np.clip(out[:, 2] + out[:, 4] / 2, 0, 1)
        out[:, 1:] = np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)
    return out


def labels_for(image_path: str | Path, nc: int) -> np.ndarray:
    """Labels of an image (see :func:`parse_labels`), found by :func:`label_path_for`."""
    return parse_labels(label_path_for(image_path), nc)


@contextlib.contextmanager
def _refuse_bombs() -> Iterator[None]:
    """PIL only warns between 89 and 179 M pixels (and refuses above): refuse those headers too, rather than spend
    seconds and gigabytes decoding what is almost always a corrupt or hostile file."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def load_image(path: str | Path) -> np.ndarray:
    """Decode an image (EXIF orientation applied) -> uint8 HWC RGB. Unreadable files raise DatasetError."""
    try:
        with _refuse_bombs(), Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise
    except Exception as e:  # PIL raises many types (OSError, SyntaxError, DecompressionBombError, ...)
        raise DatasetError(path, f"cannot decode image ({type(e).__name__}: {e}); {_IMAGE}") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(h, w) after EXIF orientation, checked with PIL ``verify`` and a full decode (``verify`` alone passes files
    whose pixel data is cut short, e.g. a truncated TIFF or BMP, which training could then not read)."""
    try:
        with _refuse_bombs(), Image.open(path) as im:
            im.verify()
        with _refuse_bombs(), Image.open(path) as im:  # verify() leaves the file unusable: reopen to decode
            im.load()
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise DatasetError(path, f"cannot read image ({type(e).__name__}: {e}); {_IMAGE}") from None
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)
