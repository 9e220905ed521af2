"""bench/ scripts run on tiny settings and write well-formed reports (timings are never asserted)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from bench.model_table import markdown, rows
from tests.fuzz_cases import EXAMPLES

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.bench


def _bench(args: list[str], timeout: int = 1200, **env_extra: str) -> subprocess.CompletedProcess:
    """`python -m <args>` from the repo root, as a user runs a bench script."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1", **env_extra}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _run_bench(args: list[str], timeout: int = 1200) -> subprocess.CompletedProcess:
    proc = _bench(args, timeout)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _run_bench_expecting_failure(args: list[str], bench_python: Path) -> subprocess.CompletedProcess:
    proc = _bench(args, 300, LEAFYOLO_BENCH_PYTHON=str(bench_python))
    assert proc.returncode != 0, proc.stdout[-2000:]
    return proc


def test_model_table_counts_params_and_flops():
    table = rows(nc=80, sizes=(320, 416))
    by_name = {r["variant"]: r for r in table}
    assert by_name["leafyolo_u"]["params"] <= 800_000 < by_name["leafyolo_n"]["params"] < by_name["leafyolo_s"]["params"]
    for r in table:
        assert 0 < r["gflops_320"] < r["gflops_416"]
    text = markdown(table)
    assert text.count("\n") == 4 and "`leafyolo_u`" in text


def _bench_python_or_skip() -> None:
    from bench.ultralytics_env import bench_python

    try:
        bench_python()
    except FileNotFoundError as e:
        if os.environ.get("CI"):
            raise  # CI builds the bench environment (scripts/test.sh); its absence there is a failure
        pytest.skip(str(e))


def test_deploy_compare_converts_both_families_and_reports_ratios(tmp_path):
    _bench_python_or_skip()
    out = tmp_path / "deploy.md"
    _run_bench(["bench.deploy_compare", "--sizes", "64", "--models", "leafyolo_u", "yolov8n", "--calib", "8",
                "--runs", "3", "--warmup", "1", "--work", str(tmp_path / "work"), "--out", str(out)])
    rows = {(r["model"], r["quant_type"]): r for r in json.loads(out.with_suffix(".json").read_text())}
    assert sorted(rows) == [(m, q) for m in ("leafyolo_u", "yolov8n") for q in ("per-channel", "per-tensor")]
    for q in ("per-tensor", "per-channel"):
        ours, ref = rows["leafyolo_u", q], rows["yolov8n", q]
        assert ref["size_ratio"] == 1.0 and ref["params"] > 3_000_000  # YOLOv8n at nc=80: 3.16M parameters
        assert ours["params"] < 800_000 and ours["tflite_bytes"] < ref["tflite_bytes"]
        assert abs(ours["size_ratio"] - ours["tflite_bytes"] / ref["tflite_bytes"]) < 1e-9
        assert ours["bytes_per_param"] == ours["tflite_bytes"] / ours["tflite_params"]
    # per-channel scales cost more per parameter in the narrow model than in YOLOv8n's wide layers
    extra = {m: rows[m, "per-channel"]["bytes_per_param"] - rows[m, "per-tensor"]["bytes_per_param"]
             for m in ("leafyolo_u", "yolov8n")}
    assert extra["leafyolo_u"] > extra["yolov8n"] > 0
    for r in rows.values():
        assert r["tflite_int8_ms"] > 0 and r["onnx_fp32_ms"] > 0 and r["onnx_int8_ms"] > 0 and r["gflops"] > 0
    text = out.read_text()
    assert "Command: `python -m bench.deploy_compare" in text and "| `yolov8n` | 64 | per-tensor |" in text
    # a second run with the same --work reuses the converted files: same bytes, latency measured again
    _run_bench(["bench.deploy_compare", "--sizes", "64", "--models", "leafyolo_u", "yolov8n", "--calib", "8",
                "--runs", "3", "--warmup", "1", "--work", str(tmp_path / "work"), "--out", str(out)])
    again = {(r["model"], r["quant_type"]): r for r in json.loads(out.with_suffix(".json").read_text())}
    assert all(again[k]["tflite_bytes"] == r["tflite_bytes"] for k, r in rows.items())


def test_tflm_arena_measures_ours_and_yolov8n_in_tflm(tmp_path):
    _bench_python_or_skip()
    out = tmp_path / "arena.md"
    _run_bench(["bench.tflm_arena", "--sizes", "64", "--models", "leafyolo_u-p30", "yolov8n", "--calib", "8",
                "--work", str(tmp_path / "work"), "--out", str(out)])
    rows = {r["model"]: r for r in json.loads(out.with_suffix(".json").read_text())}
    ours, ref = rows["leafyolo_u-p30"], rows["yolov8n"]
    assert ref["arena_ratio"] == 1.0 and ours["arena_ratio"] == ours["arena_bytes"] / ref["arena_bytes"]
    for r in (ours, ref):  # both load in TFLM; a 64 px input needs far less than 1 MB but more than the input itself
        assert r["tflm_error"] is None and 64 * 64 * 3 < r["arena_bytes"] < 1_000_000
    assert "RELU_0_TO_1" not in ours["ops"] and ours["tflite_bytes"] < ref["tflite_bytes"]
    assert "| `yolov8n` | 64 |" in out.read_text()


def test_accuracy_compare_trains_both_and_evaluates_every_file(tmp_path):
    _bench_python_or_skip()
    from pipeline.data.synthetic import generate_dataset

    data = generate_dataset(tmp_path / "data", n_train=16, n_val=8, imgsz=64, seed=3, min_size=8, max_size=24)
    out = tmp_path / "acc.md"
    _run_bench(["bench.accuracy_compare", "--data", str(data), "--params", str(REPO / "tests/tiny_params.yaml"),
                "--work", str(tmp_path / "work"), "--out", str(out)])
    rows = json.loads(out.with_suffix(".json").read_text())
    assert len(rows) == 3
    ours, ul, ul_timed = rows
    assert ours["params"] < ul["params"] and ours["int8_bytes"] < ul["int8_bytes"]
    # the peer trained for our chain's wall-clock time (teacher included) trains at least that long, in more epochs
    assert ul_timed["train_seconds"] >= 0.8 * ours["train_seconds"] and int(ul_timed["epochs"]) >= int(ul["epochs"])
    for r in rows:
        for key in ("fp32_map50", "fp32_map", "int8_map50", "int8_map"):
            assert 0 <= r[key] <= 1
        assert 0 <= r["int8"]["map50_ci_low"] <= r["int8"]["map50_ci_high"] <= 1  # percentile: need not hold the estimate
        assert r["train_seconds"] > 0 and r["int8_map50_per_mb"] == pytest.approx(r["int8_map50"] / (r["int8_bytes"] / 1e6))
        assert (r["imgsz"], r["val_images"]) == (64, 8)  # the README's sentence names both
    assert (tmp_path / "work/ultralytics_epochs/int8.tflite").is_file()
    assert (tmp_path / "work/ultralytics_time/int8.tflite").is_file()
    text = out.read_text()
    assert "Command: `python -m bench.accuracy_compare" in text and "Ultralytics `yolov8n` from scratch" in text


@pytest.mark.parametrize("script", [["bench.deploy_compare", "--models", "leafyolo_u", "yolov8n", "--sizes", "64"],
                                    ["bench.accuracy_compare", "--data", "data.yaml"]])
def test_a_missing_bench_environment_stops_the_bench_before_any_work(tmp_path, script):
    missing = tmp_path / "no-bench-venv" / "bin" / "python"
    out, work = tmp_path / "report.md", tmp_path / "work"
    proc = _run_bench_expecting_failure([*script, "--work", str(work), "--out", str(out)], missing)
    assert f"bench environment not found: {missing}" in proc.stderr and "scripts/bench_env.sh" in proc.stderr
    assert "[deploy 1/" not in proc.stdout and "[compare 1/3]" not in proc.stdout
    assert not out.exists() and not work.exists()


def test_accuracy_compare_names_a_missing_data_yaml_before_training(tmp_path):
    data, work = tmp_path / "nowhere" / "data.yaml", tmp_path / "work"
    proc = _run_bench_expecting_failure(["bench.accuracy_compare", "--data", str(data), "--work", str(work),
                                         "--out", str(tmp_path / "acc.md")], Path(sys.executable))
    assert f"{data}: data.yaml not found" in proc.stderr
    assert "[compare 1/3]" not in proc.stdout and not work.exists()


def test_collect_gathers_reports_in_order_and_relinks_plots(tmp_path):
    from bench.collect import collect

    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (results / "pipeline_sweep.md").write_text("# Sweep\n\n## Trade-off\n\n![plot](pipeline_sweep.png)\n")
    (results / "deploy_compare.md").write_text("# Deploy\n\n| a |\n")
    body = collect(results, tmp_path / "docs" / "benchmarks.md")
    assert body.index("## Deploy") < body.index("## Sweep") and "### Trade-off" in body
    assert "![plot](../bench/results/pipeline_sweep.png)" in body
    assert (tmp_path / "docs" / "benchmarks.md").read_text() == body
    (link,) = re.findall(r"\[docs/studies/README.md\]\(([^)]+)\)", body)  # the studies' index, from docs/
    assert (tmp_path / "docs" / link).resolve() == REPO / "docs" / "studies" / "README.md"
    with pytest.raises(FileNotFoundError, match="no bench reports"):
        collect(tmp_path / "empty", tmp_path / "x.md")
    (results / "recipe_spread_probe.md").write_text("# A study\n")  # not a comparison of the suite
    with pytest.raises(ValueError, match="recipe_spread_probe.md not in bench/collect.py ORDER"):
        collect(results, tmp_path / "docs" / "benchmarks.md")
    assert (tmp_path / "docs" / "benchmarks.md").read_text() == body  # left as it was


def test_collect_order_is_exactly_the_committed_bench_reports():
    """One docs/benchmarks.md section per comparison of the suite; the studies' reports live in studies/results/."""
    from bench.collect import ORDER

    assert len(set(ORDER)) == len(ORDER)
    assert set(ORDER) == {p.stem for p in (REPO / "bench" / "results").glob("*.md")}


def test_seed_spread_runs_one_chain_per_seed_and_reports_the_spread(tmp_path):
    out = tmp_path / "seeds.md"
    _run_bench(["bench.seed_spread", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--seeds", "0", "1",
                "--out", str(out)], timeout=1500)
    text = out.read_text()
    assert "Command: `python -m bench.seed_spread" in text and "| tflite_int8 |" in text and "min_map50" in text
    rows = {r["artifact"]: r for r in json.loads(out.with_suffix(".json").read_text())}
    final = rows["tflite_int8"]
    assert len(final["values"]) == 2 and final["min"] <= final["mean"] <= final["max"]
    assert final["std"] >= 0 and final["bootstrap_half_width"] is not None
    assert set(rows) >= {"distill", "finetune", "tflite_int8"}


def test_seed_spread_reads_each_artifact_from_its_own_figures():
    """On synthetic metrics, not a tiny training's (two artifacts of a 1-epoch chain can score the same)."""
    from bench.seed_spread import ARTIFACTS, summarise

    def evaluate(seed: int) -> dict:
        return {"artifacts": {name: {"map50": seed / 10 + i / 100, "map50_ci_low": 0.0, "map50_ci_high": 2 * i / 100}
                              for i, name in enumerate(ARTIFACTS)}}

    rows = {r["artifact"]: r for r in summarise({s: {"evaluate": evaluate(s), "teacher": {}} for s in (1, 2)})}
    for i, name in enumerate(ARTIFACTS):
        assert rows[name]["values"] == [0.1 + i / 100, 0.2 + i / 100]
        assert rows[name]["bootstrap_half_width"] == pytest.approx(i / 100)
    assert "teacher (torch FP32)" not in rows  # no teacher figures, no teacher row


def _browser_or_skip() -> None:
    from bench.browser import chromium_path
    from pipeline.export.web_bundle import pinned_ort

    try:
        chromium_path()
        pinned_ort(REPO / "web" / "package-lock.json")
        import playwright.sync_api  # noqa: F401
    except (FileNotFoundError, ValueError, ImportError) as e:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            raise  # CI installs Chromium and the npm packages (scripts/web_env.sh); their absence there is a failure
        pytest.skip(str(e))


@pytest.mark.browser
def test_web_latency_times_the_page_and_native_onnxruntime_on_the_same_files(tmp_path):
    _browser_or_skip()
    from pipeline.export.onnx_export import export_onnx
    from pipeline.model.leafyolo import LeafYOLO
    from tests.simple_data import write_simple_dataset

    data = write_simple_dataset(tmp_path / "data", n_images=2, imgsz=64)
    export_onnx(LeafYOLO("leafyolo_u", nc=2), tmp_path / "fp32.onnx", 64, fp16_path=tmp_path / "fp16.onnx")
    out = tmp_path / "web.md"
    _run_bench(["bench.web_latency", "--models", str(tmp_path / "fp32.onnx"), str(tmp_path / "fp16.onnx"),
                "--data", str(data), "--threads", "1", "2", "--runs", "3", "--warmup", "1", "--warmup-s", "0.2",
                "--profile-runs", "3", "--val-images", "2", "--out", str(out)], timeout=600)
    report = json.loads(out.with_suffix(".json").read_text())
    rows = report["latency"]
    assert [(r["model"], r["threads"]) for r in rows] == [("fp32.onnx", 1), ("fp32.onnx", 2), ("fp16.onnx", 1),
                                                          ("fp16.onnx", 2)]
    for r in rows:
        assert r["web"]["runs"] == r["native"]["runs"] == 3 and 0 < r["web"]["p10_ms"] <= r["web"]["median_ms"]
        assert r["ratio"] == pytest.approx(r["web"]["median_ms"] / r["native"]["median_ms"])
    for a in report["accuracy"]:
        assert a["images"] == 2 and 0 <= a["map50_web"] <= 1 and a["max_score_diff"] < 1e-3
    # the first file profiled on both sides: every convolution of the graph once per side, grouped by shape
    prof = report["profile"]
    graph_convs = sum(n.op_type == "Conv" for n in onnx.load(tmp_path / "fp32.onnx").graph.node)
    assert prof["model"] == "fp32.onnx" and prof["runs"] == 3
    for side in ("web", "native"):
        kinds = prof[side]
        assert {"1x1 conv", "depthwise conv", "full conv"} <= set(kinds)
        assert sum(kinds[k]["nodes"] for k in ("1x1 conv", "depthwise conv", "full conv")) == graph_convs
        assert all(k["us"] > 0 for k in kinds.values())
    text = out.read_text()
    assert "Command: `python -m bench.web_latency" in text and "| `fp16.onnx` |" in text and "browser / native" in text
    assert "| **all kernels** |" in text


def test_web_latency_names_a_missing_model_before_starting_the_browser(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.web_latency", "--models", str(tmp_path / "none.onnx")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and f"{tmp_path / 'none.onnx'}: not found" in proc.stderr


def test_fuzz_counts_every_kind_and_finds_nothing_unexplained(tmp_path):
    out = tmp_path / "fuzz.md"
    _run_bench(["bench.fuzz", "--scale", "0.05", "--out", str(out)], timeout=600)
    rows = {r["kind"]: r for r in json.loads(out.with_suffix(".json").read_text())}
    assert sorted(rows) == sorted(EXAMPLES)
    for kind, r in rows.items():
        assert r["tried"] == round(EXAMPLES[kind] * 0.05) == r["error"] + r["skip"] + r["valid"] + r["unexplained"]
        assert r["unexplained"] == 0 and r["unexplained_cases"] == []
    text = out.read_text()
    assert "Command: `python -m bench.fuzz" in text and "| model |" in text and "| **all** |" in text


def test_pipeline_sweep_relaxes_every_gate_budget():
    """Each sweep point must reach `dvc exp show`: the relaxed gate passes the worst possible run, whatever budgets
    params.yaml holds (a budget added later, like gate.max_arena_bytes, is opened too)."""
    import yaml

    from bench.pipeline_sweep import relaxed_gate
    from pipeline.config.stages import GateParams
    from pipeline.evaluate.gate import check_budgets

    gate = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())["gate"]
    worst = {"size_bytes": 50_000_000, "map50": 0.0, "int8_drop_map50": 1.0, "int8_retention": 0.0,
             "tflm_arena_bytes": 50_000_000}
    assert not check_budgets(worst, GateParams(**gate))["passed"]
    assert check_budgets(worst, GateParams(**relaxed_gate(gate)))["passed"]
    with pytest.raises(ValueError, match="gate.ratio"):
        relaxed_gate({**gate, "ratio": 2})


def test_pipeline_sweep_names_what_the_stages_trained():
    """No teacher trained (its metrics hold no throughput): the distill stage's figure is the student's alone."""
    from bench.pipeline_sweep import training_throughput

    alone = training_throughput({"teacher": float("nan"), "distill": 102.7, "finetune": 118.8})
    assert "no teacher trained" in alone and "the student alone 102.7" in alone and "nan" not in alone
    chain = training_throughput({"teacher": 80.0, "distill": 60.0, "finetune": 118.8})
    assert "teacher 80.0" in chain and "student + frozen teacher) 60.0" in chain


def test_the_stamped_command_runs_as_printed(monkeypatch):
    """An argument with spaces (`--set "a=1 b=2"`) is quoted, so the report's Command line can be pasted back."""
    import shlex

    from bench.stamp import command

    argv = [str(REPO / "bench" / "kd_gain.py"), "--set", "teacher.train.epochs=24 data.imgsz=96", "--seeds", "0", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    line = command()
    assert line.startswith("python -m bench.kd_gain --set ")
    assert shlex.split(line)[3:] == argv[1:]
    monkeypatch.setattr(sys, "argv", argv[:1])
    assert command() == "python -m bench.kd_gain"


def test_seed_spread_from_project_reads_only_the_params_recipe(monkeypatch, tmp_path):
    """`--from-project` takes experiments already run only when they are the params' recipe: seeds and the gate's
    budgets may differ, an allowed key is reported with both values, any other key stops it naming the key."""
    import bench.seed_spread as ss
    from bench.dvc_project import flatten

    params = {"distill": {"alpha": 0.0, "train": {"seed": 0, "min_steps": 1984}}, "teacher": {"train": {"seed": 0}},
              "finetune": {"train": {"seed": 0}}, "calibrate": {"seed": 0}, "gate": {"min_map50": 0.5}}

    def row(seed: int, **changes) -> dict:
        flat = flatten(params)
        flat.update({k: seed for k in ss.SEED_KEYS}, **{"gate.min_map50": 0.0, "distill.train.min_steps": 0}, **changes)
        final = {"artifacts": {n: {"map50": 0.6 + seed / 100} for n in ss.ARTIFACTS}}
        return {"name": f"alone-s{seed}", "params": flat, "metrics": {ss.EVALUATE: final,
                                                                      "artifacts/distill/metrics.json": {"seconds": 60}}}

    monkeypatch.setattr(ss, "exp_show", lambda project: [row(0), row(1), {**row(2), "name": "chain-s2"}])
    by_seed, differ, seconds = ss.read_seeds(params, [0, 1], tmp_path, "alone-s", {"distill.train.min_steps"})
    assert sorted(by_seed) == [0, 1] and differ == {"distill.train.min_steps": (0, 1984)} and seconds == 120
    assert by_seed[1]["evaluate"]["artifacts"]["tflite_int8"]["map50"] == pytest.approx(0.61)
    with pytest.raises(ValueError, match="distill.train.min_steps"):
        ss.read_seeds(params, [0, 1], tmp_path, "alone-s", set())
    monkeypatch.setattr(ss, "exp_show", lambda project: [row(0, **{"distill.alpha": 0.7}), row(1)])
    with pytest.raises(ValueError, match=r"alone-s0 is not the params' recipe: distill.alpha \(0.7"):
        ss.read_seeds(params, [0, 1], tmp_path, "alone-s", {"distill.train.min_steps"})
    monkeypatch.setattr(ss, "exp_show", lambda project: [row(0), row(1)])
    with pytest.raises(RuntimeError, match=r"seeds \[2\]"):
        ss.read_seeds(params, [0, 1, 2], tmp_path, "alone-s", {"distill.train.min_steps"})
