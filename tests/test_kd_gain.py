"""bench.kd_gain (issue 25 item 3): the student alone and the distilled student train the same variant for the same
steps from one teacher per seed, the gain is their paired difference, and arms that would unpair the comparison stop
before any training. Outcomes of the tiny trainings are never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from bench.kd_gain import ALONE, TEACHER, configs_from, verdict
from pipeline.io.model_loader import load_model
from studies.recipe_spread import dataset_for, with_seed
from studies.teacher_lead import lead, train_one
from tests.test_bench import _bench, _run_bench

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny_params.yaml"

pytestmark = pytest.mark.bench


def test_kd_gain_pairs_distilled_and_alone_per_seed(tmp_path):
    out = tmp_path / "kd.md"
    _run_bench(["bench.kd_gain", "--params", str(TINY), "--seeds", "0", "1", "--threads", "1",
                "--arm", "a3: distill.alpha=0.3 distill.feat_weight=0", "--out", str(out)], timeout=600)
    data = json.loads(out.with_suffix(".json").read_text())
    runs = data["runs"]
    assert set(runs) == {TEACHER, ALONE, "distilled", "a3"}
    assert all(sorted(r) == ["0", "1"] for r in runs.values())
    students = [runs[n][s] for n in (ALONE, "distilled", "a3") for s in ("0", "1")]
    assert len({(r["variant"], r["epochs"], r["steps"]) for r in students}) == 1  # equal student budget
    assert {r["variant"] for r in runs[TEACHER].values()} == {yaml.safe_load(TINY.read_text())["teacher"]["variant"]}
    for arm in ("distilled", "a3"):
        assert data["gains"][arm]["diffs"] == [runs[arm][s]["map50"] - runs[ALONE][s]["map50"] for s in ("0", "1")]
    text = out.read_text()
    assert "| a3 | distill.alpha=0.3 distill.feat_weight=0 | leafyolo_u | 0.3 |" in text
    assert "| alone | - | leafyolo_u | 0 |" in text and "| reference |" in text
    assert f"{data['gains']['distilled']['mean']:+.3f} [" in text
    assert data["teacher_lead"]["diffs"] == [runs[TEACHER][s]["map50"] - runs[ALONE][s]["map50"] for s in ("0", "1")]
    assert f"{data['teacher_lead']['mean']:+.3f} [" in text and "| teacher " in text


@pytest.mark.parametrize(("arm", "message"), [
    ("a: distill.train.epochs=3", "distill.train.epochs would unpair the comparison"),
    ("a: teacher.variant=leafyolo_u", "teacher.variant would unpair the comparison"),
    ("a: distill.alpha=0", "an arm must distill"),
    ("alone: distill.alpha=0.5", "that name is taken"),
    ("a: distill.no_such_key=1", "distill.no_such_key is not a params.yaml key"),
])
def test_kd_gain_refuses_an_unpaired_arm_before_training(tmp_path, arm, message):
    out = tmp_path / "bad.md"
    bad = _bench(["bench.kd_gain", "--params", str(TINY), "--arm", arm, "--out", str(out)], 120)
    assert bad.returncode != 0 and message in bad.stderr and not out.exists(), bad.stderr[-2000:]


def test_configs_pair_every_run_on_the_common_overrides():
    base = yaml.safe_load(TINY.read_text())
    configs = configs_from(base, {"teacher.train.epochs": 3, "train.lr0": 0.002}, [("a", {"distill.alpha": 0.2})])
    assert configs[ALONE]["distill"]["alpha"] == 0 and configs["a"]["distill"]["alpha"] == 0.2
    assert {c["teacher"]["train"]["epochs"] for c in configs.values()} == {3}
    assert {c["distill"]["train"]["lr0"] for c in configs.values()} == {0.002}
    assert base["distill"]["alpha"] > 0  # the base is not changed in place
    assert verdict({"mean": 0.05, "low": 0.031, "high": 0.07}, 0.03) == "pays >= 0.03"
    assert verdict({"mean": 0.02, "low": 0.001, "high": 0.04}, 0.03) == "pays, but < 0.03 not excluded"
    assert verdict({"mean": -0.02, "low": -0.03, "high": -0.001}, 0.03) == "costs accuracy"
    assert verdict(lead({0: 0.5}, {0: 0.4}), 0.03) == "one seed: no interval"


def test_the_distilled_run_learns_from_the_teacher(tmp_path):
    """Same seed, same steps: the student distilled from a teacher ends with other weights than the student alone,
    and a second alone run with the same seed ends with the same ones (so the difference is the teacher's)."""
    torch.set_num_threads(1)
    configs = configs_from(yaml.safe_load(TINY.read_text()), {}, [("distilled", {})])
    data_yaml = dataset_for(configs[TEACHER], tmp_path / "data")
    train_one(with_seed(configs[TEACHER], 0), "teacher", data_yaml, tmp_path / "t")
    weights: dict[str, dict[str, torch.Tensor]] = {}
    for name, config, teacher in ((ALONE, configs[ALONE], None), ("again", configs[ALONE], None),
                                  ("distilled", configs["distilled"], tmp_path / "t" / "teacher.pt")):
        train_one(with_seed(config, 0), "student", data_yaml, tmp_path / name, teacher)
        weights[name] = load_model(tmp_path / name / "student.pt")[0].state_dict()
    sd = weights
    assert set(sd[ALONE]) == set(sd["distilled"])
    first = next(k for k in sd[ALONE] if torch.is_floating_point(sd[ALONE][k]))
    assert torch.equal(sd[ALONE][first], sd["again"][first])
    assert any(not torch.equal(sd[ALONE][k], sd["distilled"][k]) for k in sd[ALONE]
               if torch.is_floating_point(sd[ALONE][k]))
