"""Shared fixtures: the tiny stage chain runs once per session (stage tests, reproducibility, the gate)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.stage_runner import ORDER, run_stage, write_params


def run_chain(work: Path, stages=ORDER[:-1]) -> dict[str, float]:
    """Every stage's exact dvc.yaml command, in order, in `work` (which holds params.yaml); wall time per stage."""
    walls = {}
    for stage in stages:
        t0 = time.time()
        proc = run_stage(stage, work)
        walls[stage] = time.time() - t0
        assert proc.returncode == 0, f"stage {stage} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        assert f"[{stage} 1/" in proc.stdout  # numbered progress
    return walls


@pytest.fixture(scope="session")
def tiny_chain(tmp_path_factory) -> Path:
    """The whole chain, data to evaluate, on tests/tiny_params.yaml, once for the session. Read-only for tests:
    copy `artifacts/` before changing anything."""
    work = tmp_path_factory.mktemp("chain")
    write_params(work)
    walls = run_chain(work)
    (work / "walls.json").write_text(json.dumps(walls))
    return work
