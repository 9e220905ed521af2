"""bench.kernel_pins at its smallest setting (three ops, this CPU only, one speed repeat on a few images): the
report's structure, and that its pinned hashes are what a fresh pinned process computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.common.kernels import PORTABLE_ENV

REPO = Path(__file__).resolve().parents[1]
OPS = ["relu", "sqrt", "conv1x1"]

pytestmark = pytest.mark.bench


def test_kernel_pins_reports_ops_per_configuration_and_the_speed_ratio(tmp_path):
    out = tmp_path / "kernel_pins.md"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.kernel_pins", "--cpus", "native", "--ops", *OPS,
                           "--variants", "leafyolo_u", "--repeats", "1", "--n-train", "8", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads(out.with_suffix(".json").read_text())

    runs = report["runs"]
    assert sorted(runs) == sorted(f"{p}, native{a}" for p in ("pinned", "unpinned") for a in ("", " again"))
    for key, run in runs.items():
        assert sorted(run["hashes"]) == sorted(OPS)
        if key.startswith("pinned"):
            assert run["env"] == PORTABLE_ENV and run["capability"] == "AVX2" and run["mkl_cnr"] == "COMPATIBLE"
        else:
            assert run["env"] == dict.fromkeys(PORTABLE_ENV)
    comparisons = report["comparisons"]
    assert set(comparisons) == {"pinned, native again", "unpinned, native again", "pinned vs unpinned, native"}
    assert all(c["max_ulp"] == 0 for c in comparisons["pinned, native again"].values())  # same bits run to run
    # the training (traced) calls ReLU and 1x1 convolutions, and no longer torch.sqrt
    assert {n: o["used_by_training"] for n, o in report["ops"].items()} == {"relu": True, "sqrt": False,
                                                                             "conv1x1": True}

    # a fresh pinned process computes the report's pinned hashes again
    again = subprocess.run([sys.executable, "-m", "bench.kernel_pins", "--probe", "--ops", *OPS], cwd=REPO,
                           env={**env, **PORTABLE_ENV}, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(again.stdout.splitlines()[-1])["hashes"] == runs["pinned, native"]["hashes"]

    (row,) = report["speed"]
    assert row["variant"] == "leafyolo_u" and row["pinned"]["capability"] == "AVX2"
    assert row["pinned"]["images_per_second"] > 0 and row["unpinned"]["images_per_second"] > 0
    assert row["ratio"] == pytest.approx(row["pinned"]["images_per_second"] / row["unpinned"]["images_per_second"])
    text = out.read_text()
    assert "Command: `python -m bench.kernel_pins" in text
    assert "| op | kernels | used by training | where |" in text and "| leafyolo_u | 1 |" in text
