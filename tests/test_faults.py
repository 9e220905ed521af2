"""Killed runs (issue 27 item 1): the fault points of pipeline/common/faults.py, the leftovers of a killed write, and
`bench.faults` killing `dvc repro` at 20+ points across every writing stage and checking what it leaves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.faults import Arrival, choose_kills, read_trace
from pipeline.common.faults import FAULT_ENV, TRACE_ENV, fault_point
from pipeline.io.atomic import atomic_write_bytes, remove_stale_siblings, temp_prefix
from tests.stage_runner import REPO

WRITING_STAGES = {"data", "teacher", "distill", "prune", "finetune", "calibrate", "onnx", "tflite", "web",
                  "evaluate", "plots", "gate"}


def test_a_fault_point_does_nothing_without_its_variables(monkeypatch, tmp_path):
    monkeypatch.delenv(FAULT_ENV, raising=False)
    monkeypatch.delenv(TRACE_ENV, raising=False)
    fault_point("write", tmp_path / "x")  # returns: no trace, no kill
    atomic_write_bytes(tmp_path / "x", b"abc")
    assert (tmp_path / "x").read_bytes() == b"abc" and os.listdir(tmp_path) == ["x"]


def run_as_stage(tmp_path: Path, body: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`body` run as the `__main__` module `stages.fake` (a stage's name is its module's), in its own session."""
    pkg = tmp_path / "pkg" / "stages"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "fake.py").write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, "-m", "stages.fake"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path / 'pkg'}{os.pathsep}{REPO}", **env},
                          capture_output=True, text=True, timeout=60, start_new_session=True)


def test_a_kill_mid_write_leaves_a_named_temporary_file_that_the_next_write_removes(tmp_path):
    """The n-th matching arrival kills the process group; the artifact's own path never holds part of a file, and
    the leftover (named after the dead writer's PID) goes with the next write of the same path."""
    out = tmp_path / "art" / "model.bin"
    out.parent.mkdir()
    out.write_bytes(b"old version")
    trace = tmp_path / "trace.txt"
    body = f"""
        from pipeline.io.atomic import atomic_write_bytes
        atomic_write_bytes({str(tmp_path / 'art' / 'other.bin')!r}, b"x" * 10)
        atomic_write_bytes({str(out)!r}, b"new" * 100_000)
        print("not reached")
    """
    proc = run_as_stage(tmp_path, body, {FAULT_ENV: "fake:write:model.bin", TRACE_ENV: str(trace)})
    assert proc.returncode == -signal.SIGKILL and "not reached" not in proc.stdout
    assert read_trace(trace) == [Arrival("fake", "write", "other.bin"), Arrival("fake", "write", "model.bin")]
    assert out.read_bytes() == b"old version"  # the previous artifact, whole
    leftovers = [p for p in out.parent.iterdir() if p.name.startswith(".model.bin.")]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size == 150_000  # half of the new file, in the temporary
    atomic_write_bytes(out, b"next")
    assert out.read_bytes() == b"next" and not leftovers[0].exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.bin", "other.bin"]


def test_a_live_writers_temporary_file_is_not_removed(tmp_path):
    """Another process writing the same path right now keeps its temporary file; a dead one's goes."""
    target = tmp_path / "model.bin"
    live = tmp_path / f".model.bin.{os.getppid()}.abc.tmp"  # our parent runs: a live writer
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
    dead = tmp_path / f".model.bin.{dead_pid}.def.tmp"
    unrelated = tmp_path / ".model.bin.notapid.tmp"
    for p in (live, dead, unrelated):
        p.write_bytes(b"partial")
    assert remove_stale_siblings(target) == [dead]
    assert live.exists() and unrelated.exists() and not dead.exists()
    assert temp_prefix(target) == f".model.bin.{os.getpid()}."


def test_kills_are_chosen_per_epoch_step_file_and_folder():
    trace = ([Arrival("teacher", "step", str(s)) for s in range(2)] + [Arrival("teacher", "write", "r.pt")]
             + [Arrival("teacher", "step", str(s)) for s in range(2, 4)] + [Arrival("teacher", "write", "r.pt")]
             + [Arrival("teacher", "write", "model.pt"), Arrival("web", "dir", "bundle")]
             + [Arrival("tflite", "write", f"f{i}") for i in range(6)])
    kills = choose_kills(trace, {"teacher": 2})
    assert [k.spec for k in kills] == ["teacher:step:1", "teacher:write:r.pt", "teacher:step:3",
                                       "teacher:write:model.pt", "web:dir:bundle", "tflite:write:f0",
                                       "tflite:write:f1", "tflite:write:f2", "tflite:write:f3"]


@pytest.mark.slow
def test_dvc_repro_killed_20_times_across_every_writing_stage_ends_identical(tmp_path):
    """`python -m bench.faults` on the tiny params (2 epochs a training stage, at most 2 write kills a stage, as
    the committed bench/results/faults.md ran): every aimed kill happens, nothing
    partial is ever visible under artifacts/, the last `dvc repro` completes with every output equal to an
    uninterrupted run's, nothing is left behind and `dvc status` is clean."""
    out = tmp_path / "faults.md"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "bench.faults", "--epochs", "2", "--max-writes", "2", "--work", str(tmp_path / "work"),
           "--out", str(out)]
    proc = subprocess.run(cmd,
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result = json.loads(out.with_suffix(".json").read_text())
    kills = result["kills"]
    assert result["problems"] == []
    assert len(kills) >= 20 and all(k["killed"] for k in kills)
    assert {k["stage"] for k in kills} == WRITING_STAGES
    for stage in ("teacher", "distill", "finetune"):  # training interrupted mid-epoch and mid-write
        assert {k["point"] for k in kills if k["stage"] == stage} == {"step", "write"}, stage
    assert any(k["temp_files"] for k in kills)  # a kill mid-write was seen to leave its temporary file ...
    assert result["leftovers"] == [] and result["status_clean"]  # ... and none is left at the end
    assert result["outputs"] and all(o["verdict"] in ("same bytes", "same but timings") for o in result["outputs"])
    assert sum(o["verdict"] == "same bytes" for o in result["outputs"]) >= 10  # models and exports, byte for byte
    assert "every kill survived" in out.read_text()
