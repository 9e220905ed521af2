"""`dvc repro` and `dvc exp run -S prune.sparsity=0.4` on a tiny params set in a scratch git repo:
the experiment re-runs `prune` and what follows, while data, teacher and distill come from the DVC cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stage_runner import REPO

pytestmark = [
    pytest.mark.skipif(shutil.which("dvc", path=str(Path(sys.executable).parent)) is None,
                       reason="dvc is not installed in this environment"),
]


def sh(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(cwd), "TQDM_DISABLE": "1", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("dvcproj")
    for name in ("pipeline", "stages"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, work / name)
    shutil.copy(REPO / "tests" / "tiny_params.yaml", work / "params.yaml")
    (work / ".gitignore").write_text("__pycache__/\n/artifacts/.resume/\n")
    sh(["git", "init", "-q"], work)
    sh(["git", "config", "user.email", "ci@example.invalid"], work)
    sh(["git", "config", "user.name", "ci"], work)
    sh(["dvc", "init", "-q"], work)
    sh(["dvc", "config", "core.analytics", "false"], work)
    # the tiny model trained one epoch fails the gate by design; the experiment compares sizes and mAP
    params = (work / "params.yaml").read_text().replace("min_map50: 0.3", "min_map50: 0.0")
    (work / "params.yaml").write_text(params.replace("max_int8_drop: 0.05", "max_int8_drop: 1.0"))
    sh(["git", "add", "-A"], work)
    sh(["git", "commit", "-qm", "project"], work)  # dvclive and dvc exp need a repo with a commit
    sh(["dvc", "repro", "-q"], work)
    sh(["git", "add", "-A"], work)
    sh(["git", "commit", "-qm", "baseline"], work)
    return work


def test_repro_builds_the_chain_and_a_second_repro_does_nothing(project):
    assert (project / "artifacts/tflite/model_int8.tflite").is_file()
    assert json.loads((project / "artifacts/gate/gate.json").read_text())["passed"] is True
    out = sh(["dvc", "status"], project).stdout
    assert "up to date" in out


def test_experiment_reruns_only_prune_and_later_stages(project):
    out = sh(["dvc", "exp", "run", "-S", "prune.sparsity=0.4"], project).stdout
    for stage in ("data", "teacher", "distill"):
        assert f"Running stage '{stage}'" not in out
    for stage in ("prune", "finetune", "calibrate", "onnx", "tflite", "evaluate", "gate"):
        assert f"Running stage '{stage}'" in out
    rows = json.loads(sh(["dvc", "exp", "show", "--json"], project).stdout)
    text = json.dumps(rows)
    assert '"prune.sparsity": 0.4' in text.replace("\n", "") or "0.4" in text
    sparsities = []
    for commit in rows:
        for exp in [commit] + [e for e in (commit.get("experiments") or [])]:
            for rev in exp.get("revs", [exp]):
                data = (rev.get("data") or {})
                metrics = data.get("metrics", {}).get("artifacts/prune/metrics.json", {}).get("data", {})
                if metrics:
                    sparsities.append(round(metrics["achieved_sparsity"], 1))
                    assert data["metrics"]["artifacts/evaluate/metrics.json"]["data"]["final"]["size_bytes"] > 0
    assert 0.3 in sparsities and 0.4 in sparsities
