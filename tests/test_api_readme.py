"""Every example of the API documentation runs as written: the ```python blocks in order in one namespace,
then each `leafyolo ...` line of the ```bash blocks through the CLI's `main`, in a scratch folder.

DOC is the README: its API section is executed as written.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from leafyolo.cli import main

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "README.md"


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def test_doc_has_the_promised_snippets():
    text = DOC.read_text()
    for needle in ("from leafyolo import LEAFYOLO", "model.predict(", "sum(p.numel() for p in model.parameters())",
                   "teacher='leafyolo_s'", "augment_strength=", "freeze_backbone=True", "format='tflite'",
                   "format='onnx'", "model.fuse()", "from leafyolo.utils.pruning import prune_model",
                   "from leafyolo.utils.quantization import quantize_model", "leafyolo predict", "leafyolo train",
                   "compress_with_distillation(student=", "compression_ratio=0.7", "torch.jit.script(",
                   "format='torchscript'"):
        assert needle in text, needle


def test_doc_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text()
    python, bash = code_blocks(text, "python"), code_blocks(text, "bash")
    assert len(python) >= 4 and bash
    namespace: dict = {"__name__": "__doc_example__"}
    for k, block in enumerate(python):
        exec(compile(block, f"{DOC.name} python block {k + 1}", "exec"), namespace)
    assert namespace["quantized"].path.is_file() and Path(namespace["tflite_file"]).is_file()
    for line in (ln.strip() for block in bash for ln in block.splitlines()):
        if line.startswith("leafyolo "):
            assert main(shlex.split(line)[1:]) == 0, line
    assert len(list(Path("predictions").glob("*.png"))) == 4
