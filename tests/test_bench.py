"""bench/ scripts run on tiny settings and write well-formed reports (timings are never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.model_table import markdown, rows

REPO = Path(__file__).resolve().parents[1]


def test_model_table_counts_params_and_flops():
    table = rows(nc=80, sizes=(320, 416))
    by_name = {r["variant"]: r for r in table}
    assert by_name["leafyolo_u"]["params"] <= 800_000 < by_name["leafyolo_n"]["params"] < by_name["leafyolo_s"]["params"]
    for r in table:
        assert 0 < r["gflops_320"] < r["gflops_416"]
    text = markdown(table)
    assert text.count("\n") == 4 and "`leafyolo_u`" in text


def test_activation_bench_writes_a_report(tmp_path):
    out = tmp_path / "act.md"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "bench.activation_int8", "--acts", "relu",
                           "--params", str(REPO / "tests" / "tiny_params.yaml"), "--n-train", "16", "--out", str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text()
    assert "Command: `python -m bench.activation_int8" in text and "| relu |" in text
    (row,) = json.loads(out.with_suffix(".json").read_text())
    assert 0 <= row["int8_map50"] <= 1 and row["tflite_bytes"] > 0
