"""bench.chain_vs_alone (issue 25 item 4): the chain and the student alone (no teacher) run as DVC experiments per
seed, every stage's seconds counted for both, and the difference is paired by seed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.chain_vs_alone import check_alone, collect, equal_time, seconds_of

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / "tests" / "tiny_params.yaml").read_text())


def metrics(map50: float, seconds: dict[str, float]) -> dict[str, dict]:
    out = {f"artifacts/{s}/metrics.json": {"seconds": v} for s, v in seconds.items()}
    out["artifacts/distill/metrics.json"]["train_epochs"] = 3
    out["artifacts/evaluate/metrics.json"]["artifacts"] = {"tflite_int8": {"map50": map50}}
    return out


STAGE_SECONDS = {"teacher": 100.0, "distill": 50.0, "prune": 1.0, "finetune": 20.0, "calibrate": 5.0, "onnx": 2.0,
                 "tflite": 30.0, "web": 1.0, "evaluate": 40.0}


def test_training_and_pipeline_seconds_add_up_the_stages():
    seconds = seconds_of(metrics(0.5, STAGE_SECONDS))
    assert seconds["train"] == 171.0 and seconds["pipeline"] == 249.0 and seconds["teacher"] == 100.0
    assert seconds_of(metrics(0.5, {**STAGE_SECONDS, "teacher": 3.0}))["train"] == 74.0


def test_collect_pairs_runs_by_name_and_the_difference_by_seed():
    rows = [{"name": f"{arm}-s{seed}", "metrics": metrics(m, {**STAGE_SECONDS, "teacher": 100.0 if arm == "chain" else 0})}
            for arm, seed, m in [("chain", 0, 0.5), ("alone", 0, 0.6), ("chain", 1, 0.4), ("alone", 1, 0.45),
                                 ("chain", 7, 0.9), ("other-s", 0, 0.1)]]
    rows.append({"name": "alone-s2", "metrics": {}})  # a run without an evaluation is left out
    runs = collect(rows, [0, 1, 2])
    assert {a: sorted(r) for a, r in runs.items()} == {"chain": [0, 1], "alone": [0, 1]}
    assert runs["alone"][1]["map50"] == 0.45 and runs["chain"][0]["distill_epochs"] == 3
    timing = equal_time(runs, 0.1)
    assert math.isclose(timing["ratio"], 71 / 171) and not timing["equal"]
    same = {a: {s: {**r, "seconds": {**r["seconds"], "train": 100.0}} for s, r in runs[a].items()} for a in runs}
    assert equal_time(same, 0.1)["equal"]


NONE = {"teacher.variant": "none", "distill.alpha": 0.0}


@pytest.mark.parametrize("alone, message", [
    ({**NONE, "finetune.train.epochs": 9}, "finetune.train.epochs would change more"),
    ({**NONE, "teacher.train.epochs": 9}, "teacher.train.epochs would change more"),
    ({"teacher.variant": "none", "distill.train.epochs": 9}, "must set teacher.variant=none and distill.alpha=0"),
    ({"distill.alpha": 0.0}, "must set teacher.variant=none"),
    ({**NONE, "distill.train.seed": 3}, "may not set the seed"),
])
def test_an_alone_recipe_that_would_unpair_the_runs_is_refused(alone, message):
    with pytest.raises(ValueError, match=message):
        check_alone(TINY, alone)


def test_bad_arguments_stop_the_bench_before_any_run(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.chain_vs_alone", "--params", str(REPO / "tests/tiny_params.yaml"),
                           "--alone", "teacher.variant=none distill.alpha=0 distill.train.epocks=3",
                           "--out", str(tmp_path / "r.md")],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "distill.train.epocks is not a params.yaml key" in proc.stderr
    assert not (tmp_path / "r.md").exists()


@pytest.mark.slow
def test_tiny_comparison_runs_both_arms_the_alone_one_without_teacher(tmp_path):
    out = tmp_path / "cva.md"
    proc = subprocess.run([sys.executable, "-m", "bench.chain_vs_alone", "--params", str(REPO / "tests/tiny_params.yaml"),
                           "--alone", "teacher.variant=none distill.alpha=0 distill.train.epochs=2", "--seeds", "0",
                           "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=1500,
                          env={**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"})
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    data = json.loads(out.with_suffix(".json").read_text())
    chain, alone = data["runs"]["chain"]["0"], data["runs"]["alone"]["0"]
    assert chain["distill_epochs"] == 1 and alone["distill_epochs"] == 2
    assert 0 < alone["seconds"]["teacher"] < chain["seconds"]["teacher"]  # the alone run's teacher stage trains nothing
    for run in (chain, alone):
        assert run["seconds"]["train"] == pytest.approx(sum(run["seconds"][s] for s in ("teacher", "distill", "prune",
                                                                                         "finetune")))
    assert data["difference"]["diffs"] == [pytest.approx(chain["map50"] - alone["map50"])]
    text = out.read_text()
    assert "Command: `python -m bench.chain_vs_alone" in text and "| alone | 2 |" in text and "Chain minus alone" in text


def test_neither_arm_inherits_the_other_recipe_from_the_workspace(monkeypatch, tmp_path):
    """`dvc exp run -S` starts from the params the previous experiment left in the workspace: a chain run after an
    alone one must still be the chain (it was not, once: seed 1's chain ran the alone recipe). Faked DVC with that
    workspace behaviour; a kept experiment with the right params is not run again, one with wrong params is."""
    import bench.chain_vs_alone as cva
    from bench.dvc_project import flatten

    base = {"teacher": {"variant": "leafyolo_s", "train": {"seed": 0}}, "calibrate": {"seed": 0},
            "distill": {"alpha": 0.7, "train": {"epochs": 24, "seed": 0}}, "finetune": {"train": {"seed": 0}}}
    workspace, experiments, calls = flatten(base), {}, []

    def fake_run(cmd, project, timeout=0):
        calls.append(cmd[:4])
        if cmd[:3] == ["dvc", "exp", "remove"]:
            experiments.pop(cmd[3])
        else:
            name, sets = cmd[4], cmd[6::2]
            workspace.update({k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in sets)})
            experiments[name] = {"name": name, "params": dict(workspace),
                                 "metrics": metrics(workspace["distill.alpha"], STAGE_SECONDS)}

    monkeypatch.setattr(cva, "run", fake_run)
    monkeypatch.setattr(cva, "exp_show", lambda project: list(experiments.values()))
    alone = {"teacher.variant": "none", "distill.alpha": 0.0, "distill.train.epochs": 64}
    runs = cva.run_experiments(tmp_path, base, alone, [0, 1])
    for seed in (0, 1):
        chain, solo = experiments[f"chain-s{seed}"]["params"], experiments[f"alone-s{seed}"]["params"]
        assert (chain["teacher.variant"], chain["distill.alpha"], chain["distill.train.epochs"]) == ("leafyolo_s", 0.7, 24)
        assert (solo["teacher.variant"], solo["distill.alpha"], solo["distill.train.epochs"]) == ("none", 0.0, 64)
        assert all(chain[k] == seed and solo[k] == seed for k in cva.SEED_KEYS)
    assert runs["chain"][1]["map50"] == 0.7 and runs["alone"][1]["map50"] == 0.0
    experiments["chain-s1"]["params"]["distill.alpha"] = 0.0  # a run made by the old code: made again
    calls.clear()
    cva.run_experiments(tmp_path, base, alone, [0, 1])
    assert calls == [["dvc", "exp", "remove", "chain-s1"], ["dvc", "exp", "run", "-n"]]
    assert experiments["chain-s1"]["params"]["distill.alpha"] == 0.7


def test_params_that_train_no_teacher_have_no_chain_arm_and_the_error_says_what_to_set():
    """params.yaml's default trains the student alone; both benches then need the chain's teacher --set."""
    from bench.kd_gain import configs_from

    plain = {**TINY, "teacher": {**TINY["teacher"], "variant": "none"}, "distill": {**TINY["distill"], "alpha": 0.0}}
    with pytest.raises(ValueError, match="trains no teacher.*--set.*teacher.variant=leafyolo_s distill.alpha=0.7"):
        check_alone(plain, NONE)
    with pytest.raises(ValueError, match="--set 'teacher.variant=leafyolo_s distill.alpha=0.7'"):
        configs_from(plain, {}, [("distilled", {})])
    assert set(configs_from(plain, {"teacher.variant": "leafyolo_s", "distill.alpha": 0.7}, [("distilled", {})])) == {
        "teacher", "alone", "distilled"}
