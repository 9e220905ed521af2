"""TorchScript: `torch.jit.script` of LEAF-YOLO (as trained, pruned and rebuilt from its pruning history, fused)
returns exactly the eager model's outputs, at two image and batch sizes (64 px x 1, 96 px x 3); so does the file
`LEAFYOLO.export(format='torchscript')` writes, reloaded by torch.jit.load in a fresh Python process that imports
only torch. Tolerance: none (torch.equal), on CPU with the same thread count."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch

from leafyolo import LEAFYOLO
from leafyolo.utils.pruning import prune_model

CASES = ((64, 1), (96, 3))  # (image size, batch)

RELOAD = """
import json, sys
import torch
torch.set_num_threads(int(sys.argv[3]))
torch.ones(max(1, torch.get_num_threads()) * (1 << 15)).exp()  # warm-up, as pipeline/common/seeding.py explains
extra = {"metadata.json": ""}
model = torch.jit.load(sys.argv[1], _extra_files=extra)
cases = torch.load(sys.argv[2])
with torch.no_grad():
    equal = [all(torch.equal(a, b) for a, b in zip(model(x), want)) for x, want in cases]
ours = sorted({m.split(".")[0] for m in sys.modules} & {"leafyolo", "pipeline", "stages", "tests"})
print(json.dumps({"equal": equal, "meta": json.loads(extra["metadata.json"]), "project_modules": ours}))
"""


@pytest.fixture(scope="module")
def models(trained_tiny, tmp_path_factory) -> dict[str, LEAFYOLO]:
    """The confident tiny model; a 30 %-pruned copy saved and rebuilt from its checkpoint; a fused copy."""
    model = trained_tiny[0]
    path = tmp_path_factory.mktemp("ts") / "pruned.pt"
    prune_model(model, sparsity=0.3).save(path)
    pruned = LEAFYOLO(path)
    assert pruned.pruning_history and sum(p.numel() for p in pruned.parameters()) < \
        0.75 * sum(p.numel() for p in model.parameters())
    return {"trained": model, "pruned": pruned, "fused": copy.deepcopy(model).fuse()}


def cases(model: LEAFYOLO) -> list[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]]:
    """(input, eager outputs) per case, on seeded random images."""
    generator = torch.Generator().manual_seed(0)
    out = []
    with torch.no_grad():
        for size, batch in CASES:
            x = torch.rand(batch, 3, size, size, generator=generator)
            out.append((x, tuple(model.eval()(x))))
    return out


@pytest.mark.parametrize("kind", ["trained", "pruned", "fused"])
def test_script_equals_eager(models, kind, tmp_path):
    model = models[kind]
    scripted = torch.jit.script(model)  # the facade hands over its PyTorch module (__prepare_scriptable__)
    assert isinstance(scripted, torch.jit.ScriptModule) and not scripted.training
    scripted.save(str(tmp_path / "scripted.pt"))  # the published snippet's save, reloaded
    scripted = torch.jit.load(str(tmp_path / "scripted.pt"))
    with torch.no_grad():
        for x, (boxes, scores) in cases(model):
            for _ in range(3):  # the profiling executor re-optimises the graph over the first calls
                got_boxes, got_scores = scripted(x)
                assert got_boxes.shape == boxes.shape and got_scores.shape == scores.shape
                assert torch.equal(got_boxes, boxes) and torch.equal(got_scores, scores)
    assert scores.shape[-1] == 2 and boxes.shape[:2] == (3, sum((96 // s) ** 2 for s in (8, 16, 32)))


@pytest.mark.parametrize("kind", ["trained", "pruned"])
def test_exported_file_reloads_in_a_fresh_process(models, kind, tmp_path):
    model = models[kind]
    path = model.export(format="torchscript", file=tmp_path / "model.torchscript")
    torch.save(cases(model), tmp_path / "cases.pt")
    proc = subprocess.run([sys.executable, "-c", RELOAD, path, str(tmp_path / "cases.pt"),
                           str(torch.get_num_threads())], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["equal"] == [True] * len(CASES)
    assert result["project_modules"] == []
    assert result["meta"]["names"] == model.names and result["meta"]["imgsz"] == model.imgsz
    assert result["meta"]["variant"] == "leafyolo_u" and result["meta"]["nc"] == 2


def test_export_options_that_do_not_apply(models, tmp_path):
    for bad in ({"int8": True}, {"fp16": True}, {"include_nms": True}):
        with pytest.raises(ValueError, match="TorchScript|include_nms"):
            models["trained"].export(format="torchscript", file=tmp_path / "x.torchscript", **bad)
    assert not (tmp_path / "x.torchscript").exists()
