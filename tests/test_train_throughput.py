"""bench.train_throughput (issue 25 item 1): ours and YOLOv8n train on the same data, size, batch and threads, and the
ratio column is each median over YOLOv8n's; bad arguments stop before any training. Timings are never asserted."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from tests.test_bench import _bench, _bench_python_or_skip, _run_bench

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_params.yaml"

pytestmark = pytest.mark.bench


def test_ours_and_yolov8n_train_on_the_same_settings(tmp_path):
    _bench_python_or_skip()
    out = tmp_path / "tp.md"
    _run_bench(["bench.train_throughput", "--params", str(TINY), "--epochs", "1", "--repeats", "2", "--batch", "8",
                "--threads", "1", "--variants", "leafyolo_u", "--out", str(out)], timeout=900)
    data = json.loads(out.with_suffix(".json").read_text())
    assert set(data["runs"]) == {"leafyolo_u", "yolov8n"} and all(len(r) == 2 for r in data["runs"].values())
    assert {r["threads"] for rs in data["runs"].values() for r in rs} == {1}
    assert data["runs"]["yolov8n"][0]["n_train"] == 16 and data["runs"]["yolov8n"][0]["epochs"] == 1
    median = {n: statistics.median(r["images_per_second"] for r in rs) for n, rs in data["runs"].items()}
    text = out.read_text()
    assert f"| `leafyolo_u` | {data['runs']['leafyolo_u'][0]['params']:,} | {median['leafyolo_u']:.1f} |" in text
    assert f"| {median['leafyolo_u'] / median['yolov8n']:.2f} |" in text and text.rstrip().endswith("| 1.00 |")


@pytest.mark.parametrize(("args", "message"), [(["--variants", "leafyolo_x"], "--variants: ['leafyolo_x'] unknown"),
                                               (["--epochs", "0"], "--epochs must be >= 1"),
                                               (["--data", "no/such.yaml"], "--data no/such.yaml: no such file")])
def test_bad_arguments_stop_before_training(tmp_path, args, message):
    bad = _bench(["bench.train_throughput", *args, "--out", str(tmp_path / "x.md")], 120)
    assert bad.returncode != 0 and message in bad.stderr and not (tmp_path / "x.md").exists(), bad.stderr[-2000:]
