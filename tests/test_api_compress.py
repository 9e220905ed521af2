"""`compress_with_distillation`: distil, prune to `compression_ratio` of the parameters KEPT, fine-tune; one epoch
per step at 64 px on tests/simple_data.py images, twice, to show the call is deterministic."""

from __future__ import annotations

import pytest
import torch

from leafyolo import LEAFYOLO
from leafyolo.utils.compression import compress_with_distillation
from pipeline.model.count import count_params
from tests.simple_data import write_simple_dataset

SETTINGS = dict(compression_ratio=0.7, epochs=1, finetune_epochs=1, finetune_alpha=0.5, img_size=64, batch_size=4)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(student, data, project, [two compressed models]): the same call twice; the teacher is a variant name,
    trained by the first call and reused from the cache by every later step."""
    root = tmp_path_factory.mktemp("compress")
    data = write_simple_dataset(root / "data", n_images=4, imgsz=64)
    student = LEAFYOLO("detect", variant="leafyolo_u", nc=2)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    out = [compress_with_distillation(student=student, teacher="leafyolo_s", data=str(data),
                                      project=root / "runs", name=name, **SETTINGS) for name in ("a", "b")]
    assert all(torch.equal(v, before[k]) for k, v in student.state_dict().items())  # the student is left as it was
    return student, data, root / "runs", out


def test_keeps_the_fraction_of_parameters_and_runs_each_step(runs):
    student, _, project, (compressed, _) = runs
    report = compressed.compress_report
    kept = count_params(compressed.model) / count_params(student.model)
    assert report["compression_ratio"] == 0.7 and report["params_kept"] == pytest.approx(kept)
    assert abs(kept - 0.7) <= 0.02
    assert report["prune"]["params_after"] == count_params(compressed.model)
    assert "train/kd_cls" in report["distill"] and "train/kd_cls" in report["finetune"]  # distilled in both steps
    assert 0 <= report["finetune"]["val/map50"] <= 1 and report["distill"]["epochs_run"] == 1
    assert len(list((project / "teachers").glob("leafyolo_s-*.pt"))) == 1  # trained once, then reused
    assert compressed.pruning_history and str(compressed.ckpt_path) == report["finetune"]["path"]
    assert compressed.ckpt_path == project / "a" / "finetune" / "model.pt" and \
        (project / "a" / "distill" / "model.pt").is_file()


def test_checkpoint_rebuilds_the_compressed_model(runs):
    compressed = runs[3][0]
    reloaded = LEAFYOLO(compressed.ckpt_path)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(reloaded(x), compressed(x)))


def test_same_call_same_model(runs):
    a, b = runs[3]
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert a.pruning_history == b.pruning_history
    for step in ("distill", "finetune"):
        ra, rb = ({k: v for k, v in m.compress_report[step].items() if k != "path"} for m in (a, b))
        assert ra == rb


@pytest.mark.parametrize("ratio", [0, 0.01, 1.5, -0.3, True, "0.7", None])
def test_compression_ratio_out_of_range(runs, ratio):
    student, data, project, _ = runs
    with pytest.raises(ValueError, match="fraction of the student's parameters kept"):
        compress_with_distillation(student=student, teacher="leafyolo_s", data=str(data), project=project,
                                   compression_ratio=ratio)


def test_needs_a_teacher_and_data(runs):
    student, data, project, _ = runs
    with pytest.raises(ValueError, match="needs a teacher"):
        compress_with_distillation(student=student, teacher=None, data=str(data), project=project)
    with pytest.raises(ValueError, match="needs data="):
        compress_with_distillation(student=LEAFYOLO("leafyolo_u", nc=2), teacher="leafyolo_s", project=project)
