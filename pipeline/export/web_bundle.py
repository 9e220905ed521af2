"""The web bundle: the static page (`web/page/`), the pipeline's ONNX, the class names and the onnxruntime-web files
pinned by `web/package-lock.json`, copied into one folder a static server can serve as it is.

The page needs no build step; this module only copies files and writes `config.json` (what the page reads: model
file, input size, class names, starting thresholds) and `manifest.json` (bytes and md5 of every file). The class
names are the ones the ONNX carries in its metadata (the onnx stage writes them); data.yaml's only for an ONNX
without them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import onnx

from pipeline.config.stages import WebParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.io.atomic import atomic_dir
from pipeline.io.file_metadata import read_onnx_metadata
from pipeline.io.ort_web import ORT_FILES, pinned_ort

PAGE_SUFFIXES = (".html", ".js", ".css")
MODEL_NAME = "model.onnx"


def model_io(path: str | Path) -> dict:
    """Input name, square input size and class count of an exported detector ONNX (CONTRACTS.md "Model I/O")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ONNX model not found (the `onnx` stage writes it)")
    graph = onnx.load(str(path), load_external_data=False).graph

    def dims(value) -> list:
        return [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]

    outputs = {o.name: dims(o) for o in graph.output}
    if len(graph.input) != 1 or set(outputs) != {"boxes", "scores"}:
        raise ValueError(f"{path}: expected one input and outputs 'boxes', 'scores', got "
                         f"{[i.name for i in graph.input]} -> {sorted(outputs)}")
    shape = dims(graph.input[0])
    if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3] or not isinstance(shape[2], int):
        raise ValueError(f"{path}: expected a static square NCHW input [B, 3, S, S], got {shape}")
    return {"input": graph.input[0].name, "imgsz": shape[2], "nc": outputs["scores"][-1]}


def precision(path: str | Path) -> str:
    """'fp16' when the model's weights are stored in float16, else 'fp32'."""
    model = onnx.load(str(path), load_external_data=False)
    half = any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    return "fp16" if half else "fp32"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def build_bundle(onnx_path: str | Path, data_yaml: str | Path, page: str | Path, lock: str | Path,
                 out: str | Path, params: WebParams) -> dict:
    """Write the bundle folder `out` (replaced in one rename) and return its manifest."""
    page = Path(page)
    version, dist = pinned_ort(lock)  # first: the most likely thing to be missing on a new machine
    io = model_io(onnx_path)
    carried = read_onnx_metadata(onnx_path).get("names")  # the names the model file carries come first
    names = [str(n) for n in carried] if carried else load_data_yaml(data_yaml).names
    if len(names) != io["nc"]:
        source = f"{onnx_path}'s metadata" if carried else str(data_yaml)
        raise ValueError(f"{onnx_path}: {io['nc']} classes but {source} names {len(names)}: {names}")
    sources = sorted(p for p in page.glob("*") if p.suffix in PAGE_SUFFIXES) if page.is_dir() else []
    if "index.html" not in {p.name for p in sources}:
        raise FileNotFoundError(f"{page}: no index.html (the page's sources)")
    config = {"model": MODEL_NAME, "precision": precision(onnx_path), "input": io["input"], "imgsz": io["imgsz"],
              "names": names, "ort_version": version, **asdict(params)}
    with atomic_dir(Path(out), marker="manifest.json") as tmp:
        for src in sources:
            shutil.copyfile(src, tmp / src.name)
        shutil.copyfile(onnx_path, tmp / MODEL_NAME)
        (tmp / "ort").mkdir()
        for name in ORT_FILES:
            shutil.copyfile(dist / name, tmp / "ort" / name)
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {"onnxruntime_web": version, "source_onnx": str(onnx_path), "precision": config["precision"],
                    "files": {p.relative_to(tmp).as_posix(): {"bytes": p.stat().st_size, "md5": md5(p)}
                              for p in files}}
        manifest["total_bytes"] = sum(f["bytes"] for f in manifest["files"].values())
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
