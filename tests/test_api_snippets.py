"""The issue's documented snippets, run literally with only epochs and image sizes shrunk, on a generated
4-image dataset in a scratch folder (so 'data.yaml' and 'your_image.jpg' are the literal names).

The snippet `model.export(format='tflite', img_size=416, int8=True, dynamic=False)` runs in
tests/test_api_parity.py, on a model trained until it detects (one INT8 conversion for both tests).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from leafyolo import LEAFYOLO, Results
from leafyolo.options import augment_for_strength
from pipeline.config.augment import AugmentParams
from tests.simple_data import write_simple_dataset
from tests.stage_runner import run_stage, write_params


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("snippets")
    write_simple_dataset(root, n_images=4, imgsz=64)
    Image.open(root / "images/train/001.png").convert("RGB").resize((96, 64)).save(root / "your_image.jpg")
    return root


@pytest.fixture(autouse=True)
def in_workdir(workdir, monkeypatch):
    monkeypatch.chdir(workdir)


@pytest.fixture(scope="module")
def trained_pt(workdir) -> Path:
    """A 1-epoch leafyolo_u checkpoint on the scratch data (for the snippets that start from weights)."""
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        torch.manual_seed(0)
        out = LEAFYOLO("detect", variant="leafyolo_u").train(data="data.yaml", epochs=1, batch_size=4, img_size=64,
                                                          project="runs/fixture", name="base")
    finally:
        os.chdir(cwd)
    return workdir / out["path"]


def test_build_a_model_and_count_its_parameters():
    model = LEAFYOLO('detect', variant='leafyolo_u')
    total_params = sum(p.numel() for p in model.parameters())
    assert 0 < total_params < 800_000 and model.nc == 80  # the Ultra budget at nc=80
    assert LEAFYOLO('detect', variant='leafyolo_u', nc=3).nc == 3
    assert sum(p.numel() for p in LEAFYOLO("leafyolo_s").parameters()) > total_params
    with pytest.raises(ValueError, match="unknown variant"):
        LEAFYOLO("detect", variant="leafyolo_x")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        LEAFYOLO("missing.pt")
    with pytest.raises(ValueError, match=r"\.pt / \.onnx / \.tflite"):
        LEAFYOLO("model.h5")


def test_predict_takes_paths_folders_globs_pil_arrays_and_lists(trained_pt):
    model = LEAFYOLO('detect', variant='leafyolo_u')
    results = model.predict('your_image.jpg')  # the literal snippet: a new model, default size
    assert len(results) == 1 and isinstance(results[0], Results) and results[0].path == "your_image.jpg"

    model = LEAFYOLO(str(trained_pt))
    img = np.asarray(Image.open("your_image.jpg").convert("RGB"))
    sources = ["your_image.jpg", "images/val", "images/val/*.png", Image.fromarray(img), img,
               ["your_image.jpg", img]]
    counts = [len(model.predict(s, conf=0.0, max_det=5)) for s in sources]
    assert counts == [1, 4, 4, 1, 1, 2]
    (r,) = model.predict("your_image.jpg", conf=0.0, max_det=5)
    assert len(r) == 5 and r.boxes.shape == (5, 4) and r.scores.shape == (5,) and r.classes.dtype == np.int64
    assert (r.boxes[:, [0, 2]] <= 96).all() and (r.boxes[:, [1, 3]] <= 64).all()  # original pixels (96 x 64)
    assert r.names == ["square", "disc"] and set(r.labels) <= {"square", "disc"}
    assert r.plot().size == (96, 64) and not np.array_equal(np.asarray(r.plot()), img)
    assert Image.open(r.save("out/pred.png")).size == (96, 64)


def test_three_stage_training_recipe(capsys):
    model = LEAFYOLO('detect', variant='leafyolo_u')
    if not torch.cuda.is_available():  # device='0' is CUDA 0: it must fail before anything is trained
        with pytest.raises(ValueError, match="CUDA is not available"):
            model.train(data='data.yaml', epochs=1, batch_size=4, teacher='leafyolo_s', distillation_alpha=0.7,
                        device='0')
        assert not Path("runs/train/teachers").exists()
    device = '0' if torch.cuda.is_available() else 'cpu'

    # stage 1: teacher guidance (a leafyolo_s teacher is trained first on the same data, then cached)
    r1 = model.train(data='data.yaml', epochs=1, batch_size=4, teacher='leafyolo_s', distillation_alpha=0.7,
                     device=device, img_size=64)
    assert model.nc == 2 and model.names == ["square", "disc"]  # the class output follows the data
    assert r1["train/kd_feat"] > 0 and Path(r1["path"]).is_file()
    (teacher,) = Path("runs/train/teachers").glob("leafyolo_s-*.pt")
    stamp = teacher.stat().st_mtime_ns
    model.train(data='data.yaml', epochs=1, batch_size=4, teacher='leafyolo_s', distillation_alpha=0.7,
                device=device, img_size=64)
    assert "reusing the cached leafyolo_s teacher" in capsys.readouterr().out
    assert teacher.stat().st_mtime_ns == stamp
    model.train(data='data.yaml', epochs=1, batch_size=4, teacher=str(teacher), img_size=64)  # or a checkpoint
    assert f"loading the teacher {teacher}" in capsys.readouterr().out

    # stage 2: fine-tune at a larger size without a teacher, gentler augmentation
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r2 = model.train(data='data.yaml', epochs=1, teacher=None, img_size=96, augment_strength=0.9)
    assert model.imgsz == 96 and LEAFYOLO(r2["path"]).imgsz == 96
    key = "model.backbone.stem.0.0.weight"
    assert not torch.equal(before[key], model.state_dict()[key])  # stage 2 trained the whole model again

    # stage 3: head-only fine-tune with a frozen backbone
    params = {k: v.clone() for k, v in model.named_parameters()}
    model.train(data='data.yaml', epochs=1, freeze_backbone=True, img_size=64)
    after = dict(model.named_parameters())
    assert all(torch.equal(params[k], after[k]) for k in params if k.startswith("model.backbone."))
    assert not torch.equal(params["model.head.cls_pred.weight"], after["model.head.cls_pred.weight"])
    assert all(p.requires_grad for p in model.parameters())  # ready for the next train() call


def test_train_rejects_unknown_or_mistyped_arguments():
    model = LEAFYOLO('detect', variant='leafyolo_u')
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['epoch'\]; accepted: data, epochs, batch_size"):
        model.train(data='data.yaml', epoch=1)
    with pytest.raises(ValueError, match="train.epochs: expected an integer"):
        model.train(data='data.yaml', epochs="1")
    with pytest.raises(ValueError, match="needs data="):
        model.train(epochs=1)
    with pytest.raises(ValueError, match="teacher must be None, a variant name"):
        model.train(data='data.yaml', epochs=1, img_size=64, teacher="big_teacher")
    assert model.eval() is model and not model.training  # nn.Module's train(False) still works


def test_augment_strength_scales_the_recipe():
    base = AugmentParams()
    a = augment_for_strength(0.9)
    assert a.hsv_s == pytest.approx(0.9 * base.hsv_s) and a.translate == pytest.approx(0.9 * base.translate)
    assert a.scale == pytest.approx(0.45) and a.mosaic == pytest.approx(0.9) and a.fliplr == base.fliplr
    off = augment_for_strength(0)
    assert all(getattr(off, k) == 0 for k in ("hsv_h", "hsv_s", "hsv_v", "translate", "scale", "fliplr", "mosaic"))
    strong = augment_for_strength(3.0)
    assert strong.mosaic == 1.0 and strong.scale == 0.9 and strong.hsv_s == 1.0  # clipped to valid ranges
    with pytest.raises(ValueError, match="augment_strength"):
        augment_for_strength(-1)


def test_export_onnx_snippet_and_variants(trained_pt):
    model = LEAFYOLO(str(trained_pt))
    path = model.export(format='onnx', img_size=64, opset_version=11, simplify=True, fp16=False, include_nms=False)
    assert path.endswith("model.onnx") and Path(path).parent == trained_pt.parent
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 11 and [o.name for o in proto.graph.output] == ["boxes", "scores"]
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 64]

    half = model.export(format="onnx", img_size=64, fp16=True)
    assert half.endswith("_fp16.onnx") and Path(half).stat().st_size < 0.6 * Path(path).stat().st_size
    dyn = LEAFYOLO(model.export(format="onnx", img_size=64, dynamic=True, file="dyn.onnx"))
    assert dyn.backend.fixed_batch is None and len(dyn.predict(["your_image.jpg"] * 3, batch_size=3)) == 3

    for bad, match in [(dict(fp16=True, int8=True), "not both"), (dict(format="tflite", dynamic=True), "dynamic"),
                       (dict(include_nms=True, int8=True), "include_nms"), (dict(format="coreml"), "format"),
                       (dict(img_size=100), "multiple of 32"), (dict(opset=11), "unknown argument"),
                       (dict(format="tflite", int8=True, quant_type="per-block"), "quant_type must be one of")]:
        with pytest.raises(ValueError, match=match):
            model.export(**bad)
    onnx_model = LEAFYOLO(path)
    for verb in (lambda: onnx_model.train(data="data.yaml"), lambda: onnx_model.export(format="onnx")):
        with pytest.raises(ValueError, match="needs a PyTorch model"):
            verb()


def test_fuse_keeps_outputs_within_1e4(trained_pt):
    model = LEAFYOLO(str(trained_pt))
    torch.manual_seed(1)
    for m in model.modules():  # non-trivial BatchNorm statistics, so the fold really changes the weights
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = model.eval()(x)
    model.fuse()
    with torch.no_grad():
        after = model(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) and model.fused
    for a, b in zip(before, after):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=0)
    assert len(model.predict("your_image.jpg")) == 1
    with pytest.raises(ValueError, match="fused"):
        model.train(data="data.yaml", epochs=1)


def test_prune_model_snippet(trained_pt):
    model = LEAFYOLO(str(trained_pt))
    from leafyolo.utils.pruning import prune_model
    pruned = prune_model(model, sparsity=0.3)
    n_model, n_pruned = (sum(p.numel() for p in m.parameters()) for m in (model, pruned))
    assert abs(1 - n_pruned / n_model - 0.3) <= 0.02 and pruned.pruning_history and not model.pruning_history
    pruned.save("pruned.pt")
    again = LEAFYOLO("pruned.pt")  # the checkpoint rebuilds the pruned architecture
    assert sum(p.numel() for p in again.parameters()) == n_pruned
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), pruned.eval()(x))
    out = again.train(data="data.yaml", epochs=1, img_size=64)  # fine-tune the pruned model
    assert LEAFYOLO(out["path"]).pruning_history == pruned.pruning_history


def test_quantize_model_snippet(trained_pt):
    model = LEAFYOLO(str(trained_pt))
    from leafyolo.utils.quantization import quantize_model
    quantized = quantize_model(model, calibration_data='data.yaml')
    assert isinstance(quantized, LEAFYOLO) and quantized.path.name == "model_int8.onnx"
    ops = {n.op_type for n in onnx.load(str(quantized.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert quantized.names == ["square", "disc"] and len(quantized.predict("your_image.jpg", conf=0.0)) == 1
    m = quantized.val(data="data.yaml")
    assert 0 <= m["mAP50"] <= 1


def test_val_returns_map_and_per_class_ap(trained_pt):
    model = LEAFYOLO(str(trained_pt))
    m = model.val(data="data.yaml", img_size=64)
    assert set(m) >= {"mAP50", "mAP50-95", "per_class"} and 0 <= m["mAP50-95"] <= m["mAP50"] <= 1
    assert set(m["per_class"]) == {"square", "disc"}
    assert {"AP50", "AP50-95", "instances"} == set(m["per_class"]["disc"])
    assert model.val(img_size=64)["mAP50"] == m["mAP50"]  # the training data is recorded in the checkpoint


def test_info_reports_params_flops_and_layers(trained_pt):
    model = LEAFYOLO(str(trained_pt))
    info = model.info()
    assert info["params"] == sum(p.numel() for p in model.parameters()) and info["gflops"] > 0
    assert any(row["name"] == "head.cls_pred" and row["output"] == [1, 2, 8, 8] for row in info["layers"])


def test_checkpoints_of_the_dvc_prune_stage_load(trained_pt, workdir):
    """The `prune` stage's output (a pruned checkpoint) loads, predicts and keeps its architecture."""
    stage_dir = workdir / "stage"
    (stage_dir / "artifacts/distill").mkdir(parents=True)
    LEAFYOLO(str(trained_pt)).save(stage_dir / "artifacts/distill/model.pt")  # as the distill stage writes it
    write_params(stage_dir)
    proc = run_stage("prune", stage_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pruned = LEAFYOLO(str(stage_dir / "artifacts/prune/model.pt"))
    assert pruned.pruning_history and pruned.names == ["square", "disc"] and pruned.imgsz == 64
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in LEAFYOLO(str(trained_pt)).parameters())
    assert len(pruned.predict("your_image.jpg", conf=0.0, max_det=3)) == 1
