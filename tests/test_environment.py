"""What later stages need from the machine is checked before any training (issue 27 item 7): a missing Python
package or the web page's npm files stop the data stage at its first step, naming the piece and the fix."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from pipeline.stage import environment
from pipeline.stage.environment import EnvironmentProblem, check_environment, environment_problems
from tests.stage_runner import REPO, run_stage, stage_command, write_params

LOCK = REPO / "web" / "package-lock.json"


def test_this_machine_has_everything_the_chain_needs():
    assert environment_problems(LOCK) == []
    check_environment(LOCK)


def test_a_missing_module_is_named_with_its_stages_and_the_fix(monkeypatch):
    needs = {**environment.PYTHON_NEEDS, "tflite": {**environment.PYTHON_NEEDS["tflite"], "no_such_mod_x": "nsm-x"},
             "evaluate": {**environment.PYTHON_NEEDS["evaluate"], "no_such_mod_x": "nsm-x"}}
    monkeypatch.setattr(environment, "PYTHON_NEEDS", needs)
    assert environment.missing_python() == {"nsm-x": ["tflite", "evaluate"]}
    with pytest.raises(EnvironmentProblem, match=r"nsm-x \(needed by the tflite, evaluate stages\) is not installed; "
                                                 r"install the pinned set: `bash scripts/env.sh`"):
        check_environment(LOCK)


def imports(source: str, module: str) -> bool:
    return re.search(rf"^\s*(import|from) {module}\b", source, re.M) is not None


def test_every_listed_module_is_one_the_pipeline_or_onnx2tf_imports():
    """The list is not padded: each module is imported in pipeline/ or stages/, or by onnx2tf (its companions)."""
    sources = "\n".join(p.read_text() for d in ("pipeline", "stages") for p in (REPO / d).rglob("*.py")
                        if p.name != "environment.py")
    onnx2tf_dir = Path(importlib.util.find_spec("onnx2tf").submodule_search_locations[0])
    onnx2tf = "\n".join(p.read_text(errors="replace") for p in onnx2tf_dir.rglob("*.py"))
    for modules in environment.PYTHON_NEEDS.values():
        for module in modules:
            if module in environment.ONNX2TF_COMPANIONS:
                assert imports(onnx2tf, module), f"{module}: onnx2tf does not import it"
            else:
                assert imports(sources, module), f"{module}: nothing in pipeline/ or stages/ imports it"
    assert set(environment.ONNX2TF_COMPANIONS) <= set(environment.PYTHON_NEEDS["tflite"])


def test_npm_files_missing_stop_the_data_stage_before_anything_is_made(tmp_path):
    write_params(tmp_path)
    (tmp_path / "web").mkdir()
    (tmp_path / "web/package-lock.json").write_text(LOCK.read_text())  # pinned, but `npm ci` never ran
    proc = run_stage("data", tmp_path)
    assert proc.returncode != 0
    assert "EnvironmentProblem" in proc.stderr and "onnxruntime-web" in proc.stderr
    assert "is not installed; run `npm ci --prefix web`" in proc.stderr
    assert "[data 1/3]" in proc.stdout and "[data 2/3]" not in proc.stdout
    assert not (tmp_path / "artifacts").exists()


def test_a_missing_python_package_stops_the_data_stage(tmp_path):
    """onnx2tf made unimportable for the stage's process (a finder that refuses it): the data stage stops at once."""
    write_params(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "onnx2tf":
                    raise ModuleNotFoundError(name)
        sys.meta_path.insert(0, Refuse())
    """))
    (tmp_path / "web").symlink_to(REPO / "web")
    env = {**os.environ, "PYTHONPATH": f"{site}:{REPO}", "TQDM_DISABLE": "1"}
    proc = subprocess.run(stage_command("data"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Python package onnx2tf (needed by the tflite stage) is not installed" in proc.stderr
    assert not (tmp_path / "artifacts").exists()
