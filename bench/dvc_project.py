"""A scratch DVC project made from this repo's `pipeline/`, `stages/`, `web/` and `dvc.yaml` with a params.yaml of its own:
a git repo with one commit (`dvc exp` and dvclive need one). Used by the DVC tests and the pipeline sweep bench, so
neither touches the user's workspace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


class DvcCommandError(RuntimeError):
    pass


def dvc_env(cwd: Path) -> dict[str, str]:
    """The environment for `dvc` in a scratch project: this interpreter's bin first, the project on PYTHONPATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(cwd), "TQDM_DISABLE": "1", "DVC_NO_ANALYTICS": "1"}


def run(cmd: list[str], cwd: Path, timeout: float = 3600) -> subprocess.CompletedProcess:
    """Run a command in the project; a non-zero exit raises with the command and the tail of its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=dvc_env(cwd), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise DvcCommandError(f"`{' '.join(cmd)}` failed in {cwd} (exit {proc.returncode}):\n"
                              f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def make_project(dst: Path, params: dict[str, Any]) -> Path:
    """Copy the pipeline into `dst` with `params` as its params.yaml, `git init` + `dvc init`, and commit."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("pipeline", "stages"):
        shutil.copytree(REPO / name, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, dst / name)
    shutil.copytree(REPO / "web", dst / "web", ignore=shutil.ignore_patterns("node_modules"))
    if (REPO / "web/node_modules").is_dir():  # the `web` stage's npm packages: linked, and committed as a link so
        (dst / "web/node_modules").symlink_to(REPO / "web/node_modules")  # queued experiments' copies have it too
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dst / ".gitignore").write_text("__pycache__/\n/artifacts/.resume/\ncalibration_image_sample_data_*.npy\n")
    run(["git", "init", "-q"], dst)
    run(["git", "config", "user.email", "bench@example.invalid"], dst)
    run(["git", "config", "user.name", "bench"], dst)
    run(["dvc", "init", "-q"], dst)
    run(["dvc", "config", "core.analytics", "false"], dst)
    commit(dst, "project")
    return dst


def commit(project: Path, message: str) -> None:
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", message], project)


def load_params(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def exp_show(project: Path) -> list[dict[str, Any]]:
    """Every row of `dvc exp show --json` (the baseline commit and each experiment) as {name, params, metrics},
    params flattened to `section.key` and metrics keyed by file."""
    rows: list[dict[str, Any]] = []

    def visit(node: dict[str, Any]) -> None:
        data = node.get("data") or {}
        if data.get("metrics") and node.get("rev") != "workspace":
            params = (data.get("params") or {}).get("params.yaml", {}).get("data", {})
            rows.append({"name": node.get("name") or data.get("name") or node.get("rev", "")[:7],
                         "rev": node.get("rev"), "params": flatten(params),
                         "metrics": {path: m.get("data", {}) for path, m in data["metrics"].items()}})
        for exp in node.get("experiments") or []:
            for rev in exp.get("revs") or []:
                visit(rev)

    for node in json.loads(run(["dvc", "exp", "show", "--json"], project).stdout):
        visit(node)
    return rows


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
