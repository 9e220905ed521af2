"""`teacher.variant: none`: the chain trains the student alone and the teacher stage trains nothing; anything that
would distill from the missing teacher is refused before training, naming the keys."""

from __future__ import annotations

import json
import shutil

import pytest

from bench.results_table import markdown
from pipeline.config.params import ParamsError
from pipeline.io.checkpoint import read_checkpoint, write_no_teacher
from pipeline.io.model_loader import load_model
from pipeline.stage.preflight import check_chain
from tests.stage_runner import REPO, run_stage, write_params


@pytest.mark.parametrize(("distill", "finetune", "named"), [
    (0.7, 0.0, "distill.alpha is 0.7"),
    (0.0, 0.5, "finetune.alpha is 0.5"),
    (0.3, 0.2, "distill.alpha is 0.3 and finetune.alpha is 0.2"),
])
def test_no_teacher_with_a_distilling_stage_is_refused_naming_the_keys(tmp_path, monkeypatch, distill, finetune,
                                                                       named):
    monkeypatch.chdir(REPO)  # the preflight reads the web stage's package-lock.json from the project root
    params = write_params(tmp_path, teacher={"variant": "none"}, distill={"alpha": distill},
                          finetune={"alpha": finetune})
    with pytest.raises(ParamsError, match=f"teacher.variant is 'none'.*{named}.*teacher.variant: leafyolo_s"):
        check_chain(params)


def test_no_teacher_is_accepted_when_nothing_distills_or_a_teacher_file_is_given(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    check_chain(write_params(tmp_path / "alone", teacher={"variant": "none"}, distill={"alpha": 0.0}))
    with pytest.raises(ValueError, match="variant must be one of .*'none'.*got 'nobody'"):
        check_chain(write_params(tmp_path / "typo", teacher={"variant": "nobody"}, distill={"alpha": 0.0}))


def test_the_no_teacher_file_is_refused_by_every_loader_with_its_reason(tmp_path):
    path = tmp_path / "model.pt"
    write_no_teacher(path, "teacher.variant is 'none' in params.yaml")
    for load in (read_checkpoint, load_model):
        with pytest.raises(ValueError, match=r"model.pt holds no model: the teacher stage trained none \(teacher"
                                             r".variant is 'none' in params.yaml\); set teacher.variant"):
            load(path)


@pytest.mark.slow
def test_a_chain_without_teacher_trains_the_student_alone(tiny_chain, tmp_path):
    work = tmp_path / "alone"
    shutil.copytree(tiny_chain / "artifacts", work / "artifacts")
    write_params(work, teacher={"variant": "none"}, distill={"alpha": 0.0})
    proc = run_stage("teacher", work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no teacher is trained" in proc.stdout and "training" not in proc.stdout
    metrics = json.loads((work / "artifacts/teacher/metrics.json").read_text())
    assert metrics["trained"] is False and metrics["params"] == 0
    assert (work / "artifacts/teacher/live/plots/metrics").is_dir()  # the stage's plots output exists
    proc = run_stage("distill", work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "neither loaded nor scored" in proc.stdout
    student = json.loads((work / "artifacts/distill/metrics.json").read_text())
    assert student["alpha"] == 0.0 and student["train_steps"] > 0 and "teacher/map50" not in student
    assert "teacher: none" in markdown(work)  # the results table says there was no teacher
    # asking the same chain to distill stops the distill stage before it trains, the student file untouched
    before = (work / "artifacts/distill/model.pt").read_bytes()
    write_params(work, teacher={"variant": "none"}, distill={"alpha": 0.7})
    proc = run_stage("distill", work)
    assert proc.returncode != 0 and "teacher.variant is 'none'" in proc.stderr and "distill.alpha is 0.7" in proc.stderr
    assert "training leafyolo_u" not in proc.stdout
    assert (work / "artifacts/distill/model.pt").read_bytes() == before


@pytest.mark.parametrize("alpha, label", [(0.0, "student, trained alone"), (0.7, "student, distilled")])
def test_the_results_table_says_whether_the_student_was_distilled(tmp_path, alpha, label):
    from pipeline.evaluate.results import artifact_rows

    for stage, body in (("evaluate", {"artifacts": {"distill": {"map50": 0.5}}}), ("distill", {"alpha": alpha})):
        (tmp_path / "artifacts" / stage).mkdir(parents=True)
        (tmp_path / "artifacts" / stage / "metrics.json").write_text(json.dumps(body))
    assert artifact_rows(tmp_path)[0]["label"].startswith(label)
