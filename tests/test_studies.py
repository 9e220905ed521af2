"""studies/ scripts run on tiny settings and write well-formed reports (the bench scripts' runner, timings never
asserted)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from pipeline.io.model_loader import load_model
from tests.stage_runner import run_stage, write_params
from tests.test_bench import _bench, _run_bench

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.bench


def test_activation_study_writes_a_report(tmp_path):
    out = tmp_path / "act.md"
    _run_bench(["studies.activation_int8", "--acts", "relu", "--params", str(REPO / "tests" / "tiny_params.yaml"),
                "--n-train", "16", "--out", str(out)], timeout=600)
    text = out.read_text()
    assert "Command: `python -m studies.activation_int8" in text and "| relu |" in text
    (row,) = json.loads(out.with_suffix(".json").read_text())
    assert 0 <= row["int8_map50"] <= 1 and row["tflite_bytes"] > 0


def test_recipe_spread_repeats_a_seed_exactly_per_recipe(tmp_path):
    """Seed 0 twice in separate processes gives the same chain (std 0), per recipe row; an unknown key stops
    before any training."""
    out = tmp_path / "recipes.md"
    _run_bench(["studies.recipe_spread", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--seeds", "0", "0",
                "--jobs", "2", "--threads", "1", "--recipe", "base:", "--recipe", "fewer: data.max_objects=3",
                "--keep", str(tmp_path / "runs"), "--out", str(out)], timeout=600)
    rows = {r["recipe"]: r for r in json.loads(out.with_suffix(".json").read_text())}
    assert set(rows) == {"base", "fewer"} and "| fewer | data.max_objects=3 |" in out.read_text()
    kept = sorted(p.parent.name for p in (tmp_path / "runs").glob("*/finetune.pt"))
    assert kept == ["base-0-seed0", "base-1-seed0", "fewer-0-seed0", "fewer-1-seed0"]
    assert all((tmp_path / "runs" / k / "distill.pt").is_file() for k in kept)
    again = _bench(["studies.recipe_spread", "--params", str(REPO / "tests" / "tiny_params.yaml"),
                    "--keep", str(tmp_path / "runs"), "--out", str(tmp_path / "again.md")], 120)
    assert again.returncode != 0 and "the folder is not empty" in again.stderr
    # --reuse: the kept teacher and distilled student are taken, only prune + finetune run; the same finetune
    # settings repeat the kept result exactly, other ones differ from it
    reused = tmp_path / "reused.md"
    _run_bench(["studies.recipe_spread", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--seeds", "0",
                "--threads", "1", "--recipe", "base:", "--recipe", "hot: finetune.train.lr0=0.05",
                "--reuse", str(tmp_path / "runs"), "--keep", str(tmp_path / "runs2"), "--out", str(reused)],
               timeout=600)
    again_rows = {r["recipe"]: r["runs"][0] for r in json.loads(reused.with_suffix(".json").read_text())}
    assert [r["folder"] for r in rows["base"]["runs"]] == [str(tmp_path / "runs" / k) for k in kept[:2]]
    kept_run = rows["base"]["runs"][0]  # listed in queued order, whichever of the two chains finished first
    for run in again_rows.values():
        assert run["upstream"] == str(tmp_path / "runs" / "base-0-seed0")
        assert run["teacher"] == kept_run["teacher"] and run["distill"] == kept_run["distill"]
        assert not list((tmp_path / "runs2").glob("*/distill.pt"))  # nothing distilled again

    def finetuned(folder: str) -> dict:
        return load_model(tmp_path / folder / "finetune.pt")[0].state_dict()

    kept_weights = finetuned("runs/base-0-seed0")
    same, hot = finetuned("runs2/base-0-seed0"), finetuned("runs2/hot-0-seed0")
    assert all(torch.equal(kept_weights[k], same[k]) for k in kept_weights)
    assert not all(torch.equal(kept_weights[k], hot[k]) for k in kept_weights)
    assert "| hot | 0 |" in reused.read_text() and "base-0-seed0 |" in reused.read_text()
    # another thread count gives other bits: nothing kept at 1 thread is taken for a 2-thread run
    other = tmp_path / "other_threads.md"
    _run_bench(["studies.recipe_spread", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--seeds", "0",
                "--threads", "2", "--recipe", "base:", "--reuse", str(tmp_path / "runs"), "--out", str(other)],
               timeout=600)
    assert "upstream" not in json.loads(other.with_suffix(".json").read_text())[0]["runs"][0]
    for row in rows.values():
        first, second = row["runs"]
        assert [first[s]["map50"] for s in ("teacher", "distill", "finetune")] == \
            [second[s]["map50"] for s in ("teacher", "distill", "finetune")]
        assert row["std"] == 0.0
    bad = _bench(["studies.recipe_spread", "--params", str(REPO / "tests" / "tiny_params.yaml"),
                  "--recipe", "x: train.no_such_key=1", "--out", str(tmp_path / "bad.md")], 120)
    assert bad.returncode != 0 and not (tmp_path / "bad.md").exists()
    assert "teacher.train.no_such_key is not a params.yaml key" in bad.stderr


def test_recipe_spread_names_a_missing_reuse_folder_before_any_work(tmp_path):
    proc = _bench(["studies.recipe_spread", "--params", str(REPO / "tests" / "tiny_params.yaml"),
                   "--reuse", str(tmp_path / "no_such_runs"), "--out", str(tmp_path / "r.md")], 120)
    assert proc.returncode != 0 and not (tmp_path / "r.md").exists()
    assert f"--reuse {tmp_path / 'no_such_runs'}: no such folder" in proc.stderr


def test_finetune_spread_repeats_the_stage_and_reports_the_spread(tmp_path):
    """One pruned checkpoint fine-tuned per seed in a bench process; seed 0 of a second process repeats the first's
    mAP50 exactly, which the report states against the stage's metrics."""
    from pipeline.compress.prune import prune
    from pipeline.data.synthetic import generate_dataset
    from pipeline.io.checkpoint import save_checkpoint
    from pipeline.model.leafyolo import LeafYOLO

    data = generate_dataset(tmp_path / "data", n_train=8, n_val=4, imgsz=64)
    model = LeafYOLO("leafyolo_u", 5)
    result = prune(model, 0.3, 64, verbose=False)
    ckpt = tmp_path / "pruned.pt"
    save_checkpoint(ckpt, result.model, ["ellipse", "triangle", "rectangle", "cross", "star"], 64,
                    result.pruning_history)
    args = ["studies.finetune_spread", "--model", str(ckpt), "--data", str(data), "--params",
            str(REPO / "tests" / "tiny_params.yaml"), "--seeds", "0", "1"]
    first = tmp_path / "first.md"
    _run_bench([*args, "--stage-metrics", "", "--out", str(first)], timeout=600)
    runs = json.loads(first.with_suffix(".json").read_text())["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    # the finetune stage itself (dvc.yaml's command, tiny params: seed 0) on the same checkpoint and data
    work = tmp_path / "stage"
    (work / "artifacts/prune").mkdir(parents=True)
    shutil.copy(ckpt, work / "artifacts/prune/model.pt")
    shutil.copytree(data.parent, work / "artifacts/data/dataset")
    write_params(work)
    proc = run_stage("finetune", work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    stage = work / "artifacts/finetune/metrics.json"
    second = tmp_path / "second.md"
    _run_bench([*args, "--stage-metrics", str(stage), "--out", str(second)], timeout=600)
    report = json.loads(second.with_suffix(".json").read_text())
    assert report["stage_repeated"] is True and "identical" in second.read_text()
    assert report["runs"] == [{**r, "seconds": s["seconds"]} for r, s in zip(runs, report["runs"])]
    bad = _bench([*args[:-3], "--seeds", "0", "--out", str(tmp_path / "bad.md")], 120)
    assert bad.returncode != 0 and "at least two seeds" in bad.stderr
    missing = _bench(["studies.finetune_spread", "--model", str(tmp_path / "no.pt"), "--out", str(tmp_path / "m.md")], 120)
    assert missing.returncode != 0 and f"{tmp_path / 'no.pt'} is not a file" in missing.stderr
    assert not (tmp_path / "m.md").exists()


def test_divergence_repeats_the_reference_exactly_and_moves_under_a_hair(tmp_path):
    """The repeated reference lands on the same weights (distance 0); a 1e-6 perturbation, another thread count
    and another seed all move them; more steps than the section trains stop with the count named."""
    out = tmp_path / "div.md"
    _run_bench(["studies.divergence", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--steps", "2",
                "--every", "1", "--threads", "1", "--out", str(out)], timeout=600)
    rows = {r["run"]: r for r in json.loads(out.with_suffix(".json").read_text())}
    assert set(rows) == {"reference", "same again", "2 thread(s)", "perturbed 1e-6", "seed 1"}
    assert rows["same again"]["distance"] == [0.0, 0.0]
    assert rows["same again"]["loss"] == rows["reference"]["loss"]
    assert all(d > 0 for d in rows["perturbed 1e-6"]["distance"])
    assert rows["seed 1"]["distance"][-1] > rows["perturbed 1e-6"]["distance"][-1] > 0
    assert "| perturbed 1e-6 |" in out.read_text()
    bad = _bench(["studies.divergence", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--steps", "50",
                  "--every", "10", "--threads", "1", "--out", str(tmp_path / "bad.md")], 300)
    assert bad.returncode != 0 and "--steps 50 is more than the 2 steps" in bad.stderr
    zero = _bench(["studies.divergence", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--every", "0",
                   "--out", str(tmp_path / "zero.md")], 120)
    assert zero.returncode != 0 and "--every must be in 1..--steps (100), got 0" in zero.stderr
    assert not (tmp_path / "zero.md").exists() and not (tmp_path / "bad.md").exists()


def test_teacher_lead_pairs_each_teacher_seed_with_the_student_alone(tmp_path):
    """Two seeds, the student alone and one teacher recipe: the lead per seed is the teacher's val mAP50 minus the
    student-alone's on that seed, their mean is the reported lead, and the student alone is trained without a
    teacher (alpha 0) as the distill section's variant; a bad key or a recipe named 'student' stops before training."""
    from studies.teacher_lead import lead, verdict

    out = tmp_path / "lead.md"
    _run_bench(["studies.teacher_lead", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--seeds", "0", "1",
                "--threads", "1", "--recipe", "e3: teacher.train.epochs=3", "--out", str(out)], timeout=600)
    data = json.loads(out.with_suffix(".json").read_text())
    student, teacher = data["runs"]["student"], data["runs"]["e3"]
    assert sorted(student) == sorted(teacher) == ["0", "1"]
    assert {r["variant"] for r in student.values()} == {"leafyolo_u"} and {r["variant"] for r in teacher.values()} \
        == {"leafyolo_n"} and {r["epochs"] for r in teacher.values()} == {3}
    row = lead({int(s): r["map50"] for s, r in teacher.items()}, {int(s): r["map50"] for s, r in student.items()})
    assert row["diffs"] == [teacher[s]["map50"] - student[s]["map50"] for s in ("0", "1")]
    assert "| e3 | teacher.train.epochs=3 | leafyolo_n | 3 (" in out.read_text()
    assert f"{row['mean']:+.3f} [" in out.read_text()
    assert verdict({"mean": 0.08, "low": 0.06, "high": 0.1}, 0.05) == "leads by >= 0.05"
    assert verdict({"mean": 0.04, "low": 0.01, "high": 0.07}, 0.05) == "leads, but < 0.05 not excluded"
    assert verdict({"mean": -0.1, "low": -0.2, "high": -0.01}, 0.05) == "does not lead"
    for recipe, message in (("x: teacher.train.no_such_key=1", "teacher.train.no_such_key is not a params.yaml key"),
                            ("student: teacher.train.epochs=2", "'student' names the student-alone reference")):
        bad = _bench(["studies.teacher_lead", "--params", str(REPO / "tests" / "tiny_params.yaml"), "--recipe", recipe,
                      "--out", str(tmp_path / "bad.md")], 120)
        assert bad.returncode != 0 and message in bad.stderr and not (tmp_path / "bad.md").exists()


def test_tf_same_padding_swaps_every_stride2_conv_and_drops_the_pad_ops(tmp_path):
    """The swapped model keeps its parameters and output shapes, differs from PyTorch's padding only by the shifted
    sampling grid (equal to a hand-padded convolution), and converts to an INT8 TFLite with no PAD op, while the
    unswapped one has one PAD per stride-2 convolution at least."""
    import torch.nn.functional as F

    from bench.deploy_compare import calibration_images
    from pipeline.model.leafyolo import LeafYOLO
    from studies.same_pad import TFSamePadConv2d, build, tf_same

    torch.manual_seed(0)
    model = LeafYOLO("leafyolo_u", 3).eval()
    n_params = sum(p.numel() for p in model.parameters())
    x = torch.rand(1, 3, 64, 64)
    before = [t.shape for t in model(x)]
    swapped = tf_same(model)
    assert swapped >= 5 and sum(isinstance(m, TFSamePadConv2d) for m in model.modules()) == swapped
    assert sum(p.numel() for p in model.parameters()) == n_params and [t.shape for t in model(x)] == before
    conv = next(m for m in model.modules() if isinstance(m, TFSamePadConv2d))
    y = torch.rand(1, conv.in_channels, 16, 16)
    by_hand = F.conv2d(F.pad(y, (0, 1, 0, 1)), conv.weight, conv.bias, 2, 0, 1, conv.groups)
    assert torch.equal(conv(y), by_hand) and conv(y).shape[-1] == 8
    calib = calibration_images(64, 8, tmp_path)
    same, pytorch = build("tf-same", 64, tmp_path / "s", calib), build("pad", 64, tmp_path / "p", calib)
    assert same["pad_ops"] == 0 and same["swapped"] == swapped and same["widened"] == pytorch["widened"] == 0
    assert pytorch["pad_ops"] >= swapped and pytorch["ops"] - same["ops"] == pytorch["pad_ops"]
    # the pipeline's exact way: the one convolution whose PAD set the arena widened, its PAD gone, the rest kept
    peak = build("peak", 64, tmp_path / "k", calib)
    assert peak["widened"] == 1 and peak["swapped"] == 0 and peak["pad_ops"] == pytorch["pad_ops"] - 1


def test_arch_latency_candidates_remove_what_they_name():
    """Each candidate is leafyolo_u with the named cost removed: `_s4` loses exactly the stride-4 inverted residual
    (its three convs), `_e2` expands the downsampling residuals 2x, `_n64` narrows the neck and head; every one runs,
    gives the baseline's output shapes with fewer parameters, and registering them leaves leafyolo_u as it was."""
    from bench.deploy_compare import MODELS
    from pipeline.model.blocks import InvertedResidualSE
    from pipeline.model.leafyolo import LeafYOLO
    from pipeline.model.variants import VARIANTS
    from studies.arch_latency import CANDIDATES, register_candidates, round_ratios

    saved, saved_models = dict(VARIANTS), dict(MODELS)
    try:
        register_candidates()
        register_candidates()  # idempotent
        assert VARIANTS["leafyolo_u"] == saved["leafyolo_u"] and set(CANDIDATES) <= set(VARIANTS)
        models = {n: LeafYOLO(n, 3).eval() for n in CANDIDATES}
    finally:  # other tests see the library's variants and deploy_compare's models only
        VARIANTS.clear()
        VARIANTS.update(saved)
        MODELS.clear()
        MODELS.update(saved_models)
    x = torch.rand(1, 3, 64, 64)
    convs = {n: sum(isinstance(m, torch.nn.Conv2d) for m in mod.modules()) for n, mod in models.items()}
    params = {n: sum(p.numel() for p in mod.parameters()) for n, mod in models.items()}
    shapes = {n: [t.shape for t in mod(x)] for n, mod in models.items()}
    assert all(s == shapes["leafyolo_u"] for s in shapes.values())
    assert all(params[n] < params["leafyolo_u"] for n in CANDIDATES if n != "leafyolo_u")
    assert convs["leafyolo_u_s4"] == convs["leafyolo_u"] - 3 and len(models["leafyolo_u_s4"].backbone.stem) == 2
    ir = [m for m in models["leafyolo_u_e2"].backbone.modules() if isinstance(m, InvertedResidualSE)]
    assert [m.dw[0].out_channels / m.expand[0].in_channels for m in ir[1:]] == [2.0] * 3
    assert models["leafyolo_u_n64"].head.cls_pred.in_channels == 64
    assert round_ratios([2.0, 3.0], [4.0, 6.0]) == [0.5, 0.5]
    with pytest.raises(ValueError, match="one reference time per round"):
        round_ratios([1.0], [1.0, 2.0])


def test_arch_latency_refuses_bad_sizes_before_any_work(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "r.md"
    proc = subprocess.run([sys.executable, "-m", "studies.arch_latency", "--sizes", "100", "--work", str(tmp_path / "w"),
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--sizes must be multiples of 32 >= 64" in proc.stderr
    assert not out.exists() and not (tmp_path / "w").exists()
