"""bench.lock_compare: byte-identical outputs, metrics equal but for timings, and real differences are told apart."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from bench.lock_compare import compare


def project(root: Path, model_md5: str, metrics: dict) -> Path:
    (root / "artifacts").mkdir(parents=True)
    text = json.dumps(metrics)
    (root / "artifacts/metrics.json").write_text(text)
    outs = [{"path": "artifacts/model.pt", "md5": model_md5},
            {"path": "artifacts/metrics.json", "md5": hashlib.md5(text.encode()).hexdigest()}]
    lock = {"schema": "2.0", "stages": {"train": {"cmd": "x", "outs": outs}}}
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))
    return root


def test_timings_are_not_differences_but_a_metric_is(tmp_path):
    before = project(tmp_path / "a", "m1", {"map50": 0.5, "seconds": 10.0, "latency_ms_median": 1.0})
    same = project(tmp_path / "b", "m1", {"map50": 0.5, "seconds": 12.5, "latency_ms_median": 1.4})
    rows = {r["path"]: r for r in compare(before, same)}
    assert rows["artifacts/model.pt"]["verdict"] == "same bytes"
    assert rows["artifacts/metrics.json"]["verdict"] == "same but timings"
    other = project(tmp_path / "c", "m2", {"map50": 0.45, "seconds": 10.0, "latency_ms_median": 1.0})
    rows = {r["path"]: r for r in compare(before, other)}
    assert rows["artifacts/model.pt"]["verdict"] == "DIFFERENT"
    diff = rows["artifacts/metrics.json"]
    assert diff["verdict"] == "DIFFERENT" and diff["differences"] == [{"key": "map50", "max_abs_diff": pytest.approx(0.05)}]


def test_a_project_without_a_lock_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty/dvc.lock does not exist"):
        compare(tmp_path / "empty", tmp_path / "empty")
