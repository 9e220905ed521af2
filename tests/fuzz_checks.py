"""Run one fuzz case (tests/fuzz_cases.py) on real files through the project's own entry points, and classify how it
ended: `error` (a project error type, ValueError / FileNotFoundError and their subclasses ParamsError, DatasetError,
UnsafeCheckpointError, or the CLI's exit status 2, whose message names the offending file or key), `skip` (counted in
the data layer's skip list, with a reason naming the file), `valid` (accepted, and the result passes the checks of
its kind: no NaN box, no label line dropped, no path outside the dataset) or `unexplained` (anything else: a library's
exception leaking out, a message that names nothing, a wrong result accepted silently; a hang or a crash of the
worker process, tests/fuzz_runner.py, ends the same way).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import shutil
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tests.fuzz_cases import SUFFIX, mutate_bytes
from tests.fuzz_seeds import IMGSZ, bmp_with_size, png_with_size, write_seeds

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ("error", "skip", "valid", "unexplained")
CLEAR = (ValueError, FileNotFoundError)


@dataclass(frozen=True)
class Outcome:
    category: str  # one of CATEGORIES
    detail: str


class Unexplained(Exception):
    """An accepted result that fails its kind's checks."""


def _leak(exc: BaseException) -> Outcome:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return Outcome("unexplained", f"{type(exc).__module__}.{type(exc).__name__} leaked{at}: {str(exc)[:300]}")


def judge(call: Callable[[], Any], names: list[str], accept: Callable[[Any], Outcome]) -> Outcome:
    """Run `call`; a project error must name one of `names`; an accepted result goes to `accept`."""
    try:
        result = call()
    except CLEAR as exc:
        msg = str(exc)
        if any(n and n in msg for n in names):
            return Outcome("error", f"{type(exc).__name__}: {msg[:300]}")
        return Outcome("unexplained", f"{type(exc).__name__} names none of {names[:4]}: {msg[:300]}")
    except Exception as exc:  # noqa: BLE001 - every other exception is what the fuzzing looks for
        return _leak(exc)
    try:
        return accept(result)
    except Unexplained as exc:
        return Outcome("unexplained", str(exc)[:400])


def cli(argv: list[str], names: list[str], accept: Callable[[str], Outcome] | None = None) -> Outcome:
    """`leafyolo.cli.main(argv)` in this process: exit status 2 with a message naming the input, or 0."""
    from leafyolo.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    except Exception as exc:  # noqa: BLE001
        return _leak(exc)
    text = err.getvalue()
    if code == 0:
        return accept(out.getvalue()) if accept else Outcome("valid", "exit 0")
    if code == 2 and "error:" in text and any(n and n in text for n in names):
        return Outcome("error", f"exit 2: {text.strip()[-300:]}")
    return Outcome("unexplained", f"exit {code}, stderr names none of {names[:4]}: {text.strip()[-300:]}")


class Context:
    """The worker's seeds (built once) and a fresh folder per case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seeds = write_seeds(root / "seeds")
        self.count = 0
        self._model = None
        self._ckpt = None

    def fresh(self) -> Path:
        self.count += 1
        work = self.root / "cases" / str(self.count)
        work.mkdir(parents=True)
        return work

    def dataset(self, work: Path) -> Path:
        """A copy of the seed dataset in `work` (cases write into it)."""
        return shutil.copytree(self.seeds["dataset"].parent, work / "ds")

    @property
    def model(self):
        if self._model is None:
            from leafyolo import LEAFYOLO

            self._model = LEAFYOLO(self.seeds["pt"])
        return self._model

    @property
    def ckpt(self) -> dict:
        if self._ckpt is None:
            from pipeline.io.checkpoint import read_checkpoint

            self._ckpt = read_checkpoint(self.seeds["pt"])
        return self._ckpt


def run_case(ctx: Context, case: dict) -> Outcome:
    work = ctx.fresh()
    try:
        return RUNNERS[case["kind"]](ctx, case, work)
    except Exception as exc:  # noqa: BLE001 - a bug of the fuzz code itself, reported as such
        return Outcome("unexplained", f"fuzz harness error: {_leak(exc).detail}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- images ---------------------------------------------------------------------------------------------------------
def image_bytes(case: dict) -> bytes:
    from PIL import Image

    if case["bomb"]:
        fmt, (w, h) = case["bomb"]
        data = png_with_size(w, h) if fmt == "PNG" else bmp_with_size(w, h)
        return mutate_bytes(data, case["mutation"])
    w, h = case["size"]
    grid = np.add.outer(np.arange(h), np.arange(w))
    rgb = np.stack([grid * 7 % 256, grid * 13 % 256, np.full_like(grid, 90)], -1).astype(np.uint8)
    mode = case["mode"]
    if mode in ("I;16", "I", "F"):
        img = Image.fromarray((grid * 997 % 65536).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    else:
        img = Image.fromarray(rgb).convert(mode)
    kwargs = {}
    if case["orientation"] is not None and case["format"] != "BMP":
        exif = Image.Exif()
        exif[0x0112] = case["orientation"]
        kwargs["exif"] = exif
    buf = io.BytesIO()
    try:
        img.save(buf, case["format"], **kwargs)
    except (OSError, ValueError, KeyError, TypeError):  # a mode this writer cannot store: its RGB version
        buf = io.BytesIO()
        img.convert("RGB").save(buf, case["format"], **kwargs)
    return mutate_bytes(buf.getvalue(), case["mutation"])


def _image_accepted(path: Path, shape: tuple[int, int]) -> None:
    """An image the index accepted must decode, at the size it was indexed with."""
    from pipeline.data.labels import load_image

    try:
        decoded = load_image(path)
    except Exception as exc:  # noqa: BLE001
        raise Unexplained(f"indexed as valid ({shape}) but does not decode: {type(exc).__name__}: {exc}") from None
    if decoded.shape[:2] != tuple(shape) or decoded.dtype != np.uint8 or decoded.shape[2] != 3:
        raise Unexplained(f"indexed as {shape} but decodes to {decoded.shape} {decoded.dtype}")


def run_image(ctx: Context, case: dict, work: Path) -> Outcome:
    from pipeline.data.dataset import YoloDataset, build_index

    ds = ctx.dataset(work)
    folder = ds / "images" / "val"
    path = folder / ("zz_fuzz" + (case["suffix"] or SUFFIX[case["format"]]))
    path.write_bytes(image_bytes(case))
    (ds / "labels" / "val" / "zz_fuzz.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    names = [path.name]
    if case["entry"] == "predict":
        return judge(lambda: ctx.model.predict(str(path)), names, _detections_ok)

    def index():
        if case["entry"] == "dataset":
            data = YoloDataset(folder, 2, IMGSZ, on_error=case["on_error"])
            items = [data[i] for i in range(len(data))]
            return data.images, data.shapes, data.skipped, items
        idx = build_index(folder, 2, case["on_error"], decode=case["entry"] == "index-decode")
        return idx.images, idx.shapes, idx.skipped, None

    def accept(result) -> Outcome:
        images, shapes, skipped, items = result
        if path in [p for p, _ in skipped]:
            reason = dict(skipped)[path]
            if case["on_error"] != "skip" or path.name not in reason:
                raise Unexplained(f"skipped with on_error={case['on_error']}, reason {reason!r}")
            return Outcome("skip", reason[:300])
        if path not in images:
            raise Unexplained("neither indexed nor skipped")
        _image_accepted(path, shapes[images.index(path)])
        for img, t, _ in items or []:
            if img.shape != (3, IMGSZ, IMGSZ) or not np.isfinite(t.numpy()).all():
                raise Unexplained(f"dataset item {tuple(img.shape)} targets {t.tolist()}")
        return Outcome("valid", f"indexed at {shapes[images.index(path)]}")

    return judge(index, names, accept)


def _detections_ok(results) -> Outcome:
    for r in results:
        boxes, scores = np.asarray(r.boxes), np.asarray(r.scores)
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()):
            raise Unexplained(f"detections with non-finite boxes or scores outside [0, 1]: {boxes[:2]}, {scores[:2]}")
    return Outcome("valid", f"{sum(len(r) for r in results)} detections")


# --- label files ----------------------------------------------------------------------------------------------------
def label_bytes(case: dict) -> bytes:
    lines = [case["sep"].join(fields) for fields in case["lines"]]
    text = case["newline"].join(lines) + (case["newline"] if case["trailing_newline"] and lines else "")
    return (("\ufeff" if case["bom"] else "") + text).encode(case["encoding"], "replace")


def check_labels(raw: bytes, rows: np.ndarray, nc: int) -> None:
    """What an accepted label file must give: one row per non-blank line, each the line's own finite numbers, an
    integer class in [0, nc), a box of positive size inside the image."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unexplained(f"accepted a label file that is not UTF-8: {raw[:60]!r}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if rows.shape != (len(lines), 5):
        raise Unexplained(f"{len(lines)} non-blank lines gave rows of shape {rows.shape}: {lines[:3]}")
    for line, row in zip(lines, rows):
        try:
            expected = [float(f) for f in line.split()]
        except ValueError:
            raise Unexplained(f"accepted the non-numeric line {line!r} as {row.tolist()}") from None
        cls, cx, cy, w, h = (float(v) for v in row)
        if len(expected) != 5 or not np.isfinite(row).all() or cls != int(cls) or not 0 <= cls < nc:
            raise Unexplained(f"accepted line {line!r} as {row.tolist()}")
        if not (w > 0 and h > 0 and cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6 and cy - h / 2 >= -1e-6
                and cy + h / 2 <= 1 + 1e-6) or not np.allclose(row, expected, atol=1e-5):
            raise Unexplained(f"accepted line {line!r} as {row.tolist()}")


def run_label(ctx: Context, case: dict, work: Path) -> Outcome:
    from pipeline.data.dataset import build_index
    from pipeline.data.labels import parse_labels

    raw, nc = label_bytes(case), 3
    if case["entry"] == "parse":
        path = work / "labels" / "x.txt"
        path.parent.mkdir()
        path.write_bytes(raw)

        def accept(rows):
            check_labels(raw, rows, nc)
            return Outcome("valid", f"{len(rows)} rows")

        return judge(lambda: parse_labels(path, nc), [path.name], accept)
    ds = ctx.dataset(work)
    path = ds / "labels" / "val" / "000.txt"
    path.write_bytes(raw)
    image = ds / "images" / "val" / "000.png"

    def accept_index(idx):
        if image in [p for p, _ in idx.skipped]:
            reason = dict(idx.skipped)[image]
            if case["on_error"] != "skip" or path.name not in reason:
                raise Unexplained(f"skipped with on_error={case['on_error']}, reason {reason!r}")
            return Outcome("skip", reason[:300])
        check_labels(raw, idx.labels[idx.images.index(image)], nc)
        return Outcome("valid", "indexed")

    return judge(lambda: build_index(ds / "images" / "val", nc, case["on_error"]), [path.name], accept_index)


# --- data.yaml ------------------------------------------------------------------------------------------------------
def value_of(spec: Any, places: dict[str, str]) -> Any:
    """A drawn value: the named special floats and places (paths in the case's folder), else itself."""
    if isinstance(spec, str) and spec in ("nan", "inf", "-inf"):
        return float(spec)
    if isinstance(spec, str) and spec in places:
        return places[spec]
    return copy.deepcopy(spec)


def text_bytes(doc: Any, mutation: Any, dump: Callable[[Any], str]) -> bytes:
    """The document as text, with a drawn text-level mutation."""
    text = dump(doc)
    if mutation is None:
        return text.encode()
    if isinstance(mutation, tuple):
        return mutate_bytes(text.encode(), mutation[1])
    return {"invalid": b"train: [unclosed\n  - {", "list": b"- a\n- b\n", "empty": b"", "scalar": b"42\n",
            "deep": b"[" * 100_000 + b"]" * 100_000,
            "latin-1": (text + "# caf\xe9\n").encode("latin-1", "replace"),
            "aliases": b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nnames: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       b"train: images/train\nval: images/val\n"}[mutation]


def _inside(path: Path, root: Path) -> bool:
    path, root = path.resolve(), root.resolve()
    return path == root or root in path.parents


def run_data_yaml(ctx: Context, case: dict, work: Path) -> Outcome:
    from pipeline.config.stages import DataParams
    from pipeline.data.data_yaml import load_data_yaml
    from pipeline.data.prepare import prepare_dataset

    ds = ctx.dataset(work)
    elsewhere = ctx.seeds["elsewhere"]
    places = {"dotdot_elsewhere": os.path.relpath(elsewhere / "images" / "train", ds),
              "abs_elsewhere": str(elsewhere / "images" / "train"), "abs_inside": str(ds / "images" / "train")}
    doc: dict = {"path": ".", "train": "images/train", "val": "images/val", "nc": 2, "names": ["square", "disc"]}
    keys = []
    for change in case["changes"]:
        keys.append(change[1])
        if change[0] == "set":
            doc[change[1]] = value_of(change[2], places)
        else:
            doc.pop(change[1], None)
    source = ds / "data.yaml"
    source.write_bytes(text_bytes(doc, case["text"], lambda d: yaml.safe_dump(d, sort_keys=False)))
    names = [str(source), "data.dep", str(ds), *(f"'{k}'" for k in keys), *(f"{k}:" for k in keys)]
    if case["entry"] == "cli-val":
        return cli(["val", "--model", str(ctx.seeds["pt"]), "--data", str(source), "--batch-size", "2"], names)
    params = DataParams(source=str(source), coco_images="", n_train=1, n_val=1, imgsz=32, min_object_px=2,
                        max_object_px=16, max_clutter=0, max_objects=2, seed=0, on_error=case["on_error"], dep=str(ds))

    def accept(result) -> Outcome:
        data_yaml, report = result
        cfg = load_data_yaml(data_yaml)
        if not (_inside(cfg.train, ds) and _inside(cfg.val, ds)) or len(cfg.names) != cfg.nc:
            raise Unexplained(f"accepted train={cfg.train} val={cfg.val} (dataset root {ds}), names {cfg.names}")
        skipped = [s for split in report["skipped"].values() for s in split]
        if skipped:
            if case["on_error"] != "skip" or not all(Path(p).name in reason for p, reason in skipped):
                raise Unexplained(f"skipped {skipped} with on_error={case['on_error']}")
            return Outcome("skip", f"{len(skipped)} skipped: {skipped[0][1][:200]}")
        return Outcome("valid", f"nc={cfg.nc}")

    return judge(lambda: prepare_dataset(params, work / "out"), names, accept)


# --- COCO json ------------------------------------------------------------------------------------------------------
def coco_doc(ds: Path) -> dict:
    """The seed dataset's train split as COCO: 2 images, their boxes, categories 1 and 2."""
    from pipeline.data.labels import parse_labels

    doc: dict = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "disc"}]}
    for k, image in enumerate(sorted((ds / "images" / "train").glob("*.png")), 1):
        doc["images"].append({"id": k, "file_name": image.name, "width": IMGSZ, "height": IMGSZ})
        for cls, cx, cy, w, h in parse_labels(ds / "labels" / "train" / f"{image.stem}.txt", 2).tolist():
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": k, "category_id": int(cls) + 1,
                                       "iscrowd": 0, "bbox": [(cx - w / 2) * IMGSZ, (cy - h / 2) * IMGSZ, w * IMGSZ,
                                                              h * IMGSZ]})
    return doc


def run_coco(ctx: Context, case: dict, work: Path) -> Outcome:
    from pipeline.data.coco import coco_to_yolo
    from pipeline.data.data_yaml import load_data_yaml
    from pipeline.data.labels import list_images, parse_labels

    ds = ctx.dataset(work)
    images = ds / "images" / "train"
    doc = coco_doc(ds)
    outside = work / "outside"
    outside.mkdir()
    shutil.copy(images / "000.png", outside / "000.png")
    (images / "notes.png").write_text("not an image\n")
    (images / "bad.png").write_bytes((images / "001.png").read_bytes()[:60])
    places = {"dotdot_image": "../../../outside/000.png", "abs_image": str(outside / "000.png"),
              "missing_image": "nope.png", "text_file": "notes.png", "corrupt_image": "bad.png",
              "label_file": "../../labels/train/000.txt"}
    plural = {"image": "images", "annotation": "annotations", "category": "categories"}
    for change in case["changes"]:
        what = change[0]
        if what == "top":
            doc[change[1]] = value_of(change[2], places)
        elif what == "delete_top":
            doc.pop(change[1], None)
        elif what == "duplicate":
            if isinstance(doc.get(change[1]), list) and doc[change[1]]:
                doc[change[1]].append(copy.deepcopy(doc[change[1]][0]))
        else:
            items = doc.get(plural[what.removeprefix("delete_")])
            if isinstance(items, list) and items and isinstance(items[change[1] % len(items)], dict):
                item = items[change[1] % len(items)]
                if what.startswith("delete_"):
                    item.pop(change[2], None)
                else:
                    item[change[2]] = value_of(change[3], places)
    source = work / "train.json"
    source.write_bytes(text_bytes(doc, case["text"], json.dumps))
    names = [str(source), str(images)]

    def accept(data_yaml) -> Outcome:
        cfg = load_data_yaml(data_yaml)
        lines = 0
        for split in ("train", "val"):
            for image in list_images(cfg.split(split)):
                src = images / image.name
                if not src.is_file() or src.read_bytes() != image.read_bytes():
                    raise Unexplained(f"imported {image.name}, which is not a file of the images folder {images}")
                lines += len(parse_labels(Path(data_yaml).parent / "labels" / split / f"{image.stem}.txt", cfg.nc))
        expected = [a for a in doc["annotations"] if not a.get("iscrowd", 0)]
        if lines != len(expected):
            raise Unexplained(f"{len(expected)} annotations became {lines} label lines")
        return Outcome("valid", f"{lines} boxes")

    return judge(lambda: coco_to_yolo(source, images, work / "out", val_fraction=case["val_fraction"]), names, accept)


# --- params.yaml ----------------------------------------------------------------------------------------------------
def leaf_keys(section: Any, prefix: str) -> list[str]:
    if not isinstance(section, dict):
        return [prefix]
    return [k for key, value in section.items() for k in leaf_keys(value, f"{prefix}.{key}")]


def _finite(obj: Any, key: str) -> None:
    if is_dataclass(obj):
        for f in fields(obj):
            _finite(getattr(obj, f.name), f"{key}.{f.name}")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise Unexplained(f"{key} = {obj} accepted")


def run_params(ctx: Context, case: dict, work: Path) -> Outcome:
    from pipeline.config import stages
    from pipeline.config.params import load_section

    classes = {"data": stages.DataParams, "teacher": stages.TeacherParams, "distill": stages.DistillParams,
               "prune": stages.PruneParams, "tflite": stages.TfliteParams, "finetune": stages.FinetuneParams,
               "calibrate": stages.CalibrateParams, "onnx": stages.OnnxParams, "web": stages.WebParams,
               "evaluate": stages.EvaluateParams, "plots": stages.PlotsParams, "gate": stages.GateParams}
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    section = case["section"]
    keys = leaf_keys(params[section], section)
    names = []
    for change in [*case["changes"], *case["more"]]:
        if change[0] == "missing_section":
            params.pop(section, None)
            names.append(f"'{section}'")
            continue
        if change[0] == "section":
            params[section] = value_of(change[1], {})
            names.append(section)
            continue
        if not isinstance(params.get(section), dict):
            continue
        key = keys[change[1] % len(keys)]
        *parents, leaf = key.split(".")[1:]
        node = params[section]
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue  # an earlier change replaced a parent of this key
        if change[0] == "set":
            node[leaf] = value_of(change[2], {})
        elif change[0] == "delete":
            node.pop(leaf, None)
        else:
            key, leaf = ".".join([section, *parents, "bogus_key"]), "bogus_key"
            node[leaf] = 1
        names += [key, f"{'.'.join(key.split('.')[:-1])}.augment key '{leaf}'"]
    path = work / "params.yaml"
    path.write_bytes(text_bytes(params, case["text"], lambda d: yaml.safe_dump(d, sort_keys=False)))
    if case["text"] is not None:
        names.append(str(path))

    def accept(parsed) -> Outcome:
        _finite(parsed, section)
        return Outcome("valid", type(parsed).__name__)

    return judge(lambda: load_section(path, section, classes[section]), names, accept)


# --- model files ----------------------------------------------------------------------------------------------------
def model_bytes(ctx: Context, case: dict) -> bytes:
    if case["seed"] != "pt-fields":
        return mutate_bytes(ctx.seeds[case["seed"]].read_bytes(), case["mutation"])
    import torch

    _, field, value = case["mutation"]
    ckpt = dict(ctx.ckpt)
    if value == "<delete>":
        ckpt.pop(field, None)
    else:
        ckpt[field] = copy.deepcopy(value)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


def run_model(ctx: Context, case: dict, work: Path) -> Outcome:
    from leafyolo import LEAFYOLO

    seed = "pt" if case["seed"] == "pt-fields" else case["seed"]
    path = work / f"model{case['suffix'] or '.' + seed}"
    path.write_bytes(model_bytes(ctx, case))
    names, image, p = [str(path)], str(ctx.seeds["image"]), str(path)
    entry = case["entry"]
    if entry == "api-load":
        return judge(lambda: LEAFYOLO(path), names, lambda m: Outcome("valid", repr(m)))
    if entry == "api-predict":
        return judge(lambda: LEAFYOLO(path).predict(image, conf=0.01), names, _detections_ok)
    if entry == "api-info":
        return judge(lambda: LEAFYOLO(path).info(verbose=False), names, lambda info: Outcome("valid", "info"))
    if entry == "cli-info":
        return cli(["info", "--model", p], names)
    if entry == "cli-predict":
        out = work / "dets.json"

        def dets_ok(_stdout: str) -> Outcome:
            records = json.loads(out.read_text())
            boxes = np.asarray([b for r in records for b in r["boxes"]], dtype=np.float64)
            if boxes.size and not np.isfinite(boxes).all():
                raise Unexplained(f"predict wrote non-finite boxes {boxes[:2]}")
            return Outcome("valid", f"{len(boxes)} detections")

        return cli(["predict", "--model", p, "--source", image, "--json", str(out), "--conf", "0.01"], names,
                   lambda s: judge(lambda: s, [], dets_ok))
    if entry == "cli-val":
        return cli(["val", "--model", p, "--data", str(ctx.seeds["dataset"]), "--batch-size", "2"], names)
    return cli(["export", "--model", p, "--format", "onnx", "--no-simplify", "--file", str(work / "out.onnx")], names)


def _crash(ctx: Context, case: dict, work: Path) -> Outcome:
    os.kill(os.getpid(), signal.SIGSEGV)  # what a native library does with a file it trusts
    return Outcome("valid", "not reached")


def _hang(ctx: Context, case: dict, work: Path) -> Outcome:
    time.sleep(3600)
    return Outcome("valid", "not reached")


RUNNERS = {"image": run_image, "label": run_label, "data_yaml": run_data_yaml, "coco": run_coco, "params": run_params,
           "model": run_model, "_crash": _crash, "_hang": _hang}  # the last two test the runner's own guard
