import copy
import json
import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pipeline.compress.prune import prune
from pipeline.io.checkpoint import save_checkpoint
from pipeline.io.model_loader import load_model
from pipeline.model.count import count_params
from pipeline.model.leafyolo import LeafYOLO

IMGSZ, NC = 64, 3
N_ANCHORS = (IMGSZ // 8) ** 2 + (IMGSZ // 16) ** 2 + (IMGSZ // 32) ** 2


def fresh_model(seed: int = 0) -> LeafYOLO:
    torch.manual_seed(seed)
    return LeafYOLO("leafyolo_u", nc=NC)


def images(batch: int = 2) -> torch.Tensor:
    return torch.rand(batch, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))


_CACHE: dict[float, object] = {}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: extra intra-op threads only contend for the shared cores (10x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pruned(sparsity: float):
    """Prune once per target and share the result (pruning is the slow part); tests must not mutate it."""
    if sparsity not in _CACHE:
        _CACHE[sparsity] = prune(fresh_model(), sparsity, IMGSZ, verbose=False)
    return _CACHE[sparsity]


@pytest.mark.parametrize("target", [0.3, 0.4])
def test_reaches_parameter_sparsity(target):
    result = pruned(target)
    assert result.params_before == count_params(fresh_model())
    assert result.params_after == count_params(result.model) < result.params_before
    assert result.achieved_sparsity == pytest.approx(1 - result.params_after / result.params_before)
    assert abs(result.achieved_sparsity - target) <= 0.02
    assert result.flops_after < result.flops_before
    assert 0 < result.channel_ratio < target  # channels pruned per layer < parameters removed overall
    assert result.pruning_history and json.loads(json.dumps(result.pruning_history)) == result.pruning_history


def test_output_convs_and_shapes_kept():
    model = pruned(0.3).model.eval()
    assert model.head.cls_pred.out_channels == NC and model.head.box_pred.out_channels == 4
    # the shared head is coupled to all three neck outputs: the head's input width shrank with them
    assert model.head.cls_pred.in_channels < 72
    with torch.no_grad():
        boxes, scores = model(images())
        t_boxes, logits, feats = model.forward_train(images())
    assert boxes.shape == t_boxes.shape == (2, N_ANCHORS, 4)
    assert scores.shape == logits.shape == (2, N_ANCHORS, NC)
    assert [f.shape[1] for f in feats] == [model.head.levels[0].stem[0][0].in_channels] * 3
    assert torch.isfinite(boxes).all() and ((scores >= 0) & (scores <= 1)).all()


@pytest.mark.parametrize("bad", [-0.1, 0.96, "0.3", True])
def test_invalid_sparsity_names_key(bad):
    with pytest.raises(ValueError, match=r"prune\.sparsity"):
        prune(fresh_model(), bad, IMGSZ, verbose=False)


@pytest.mark.parametrize("bad", [-0.1, 0.96, float("nan"), "0.3", True])
def test_params_pruner_and_api_share_one_sparsity_range(bad):
    """params.yaml's prune.sparsity, prune() and the API's compression_ratio (1 - sparsity) are checked against the
    one range of pipeline/compress/sparsity.py."""
    from leafyolo.utils.compression import check_ratio
    from pipeline.compress.sparsity import MAX_SPARSITY
    from pipeline.config.params import section_from
    from pipeline.config.stages import PruneParams

    expected = rf"sparsity must be a number in \[0, {MAX_SPARSITY}\]"
    # a string, a bool or a NaN stops at the typed parsing, before the range
    number = isinstance(bad, float) and math.isfinite(bad)
    with pytest.raises(ValueError, match=r"prune\." + (expected if number else "sparsity")):
        section_from({"prune": {"sparsity": bad, "importance": "l2", "target_bytes": 0, "round_to": 1}}, "params.yaml",
                     "prune", PruneParams)
    with pytest.raises(ValueError, match=expected):
        prune(fresh_model(), bad, IMGSZ, verbose=False)
    with pytest.raises(ValueError, match="compression_ratio must be a number"):
        check_ratio(1 - bad if isinstance(bad, float) else bad)
    assert check_ratio(round(1 - MAX_SPARSITY, 6)) == pytest.approx(1 - MAX_SPARSITY) and check_ratio(1) == 1


def test_invalid_importance_and_imgsz():
    with pytest.raises(ValueError, match=r"prune\.importance"):
        prune(fresh_model(), 0.3, IMGSZ, importance="l3", verbose=False)
    with pytest.raises(ValueError, match=r"imgsz must be a positive multiple of 32"):
        prune(fresh_model(), 0.3, 50, verbose=False)


def test_zero_sparsity_is_noop():
    model = fresh_model()
    before = copy.deepcopy(model.state_dict())
    result = prune(model, 0, IMGSZ, verbose=False)
    assert result.model is model and result.pruning_history == []
    assert result.params_after == result.params_before == count_params(model)
    assert result.achieved_sparsity == 0.0 and result.flops_after == result.flops_before
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_checkpoint_round_trip_reproduces_outputs(tmp_path):
    result = pruned(0.3)
    model = result.model.eval()
    path = tmp_path / "pruned.pt"
    save_checkpoint(path, model, ["a", "b", "c"], IMGSZ, pruning_history=result.pruning_history)
    loaded, ckpt = load_model(path)
    assert ckpt["pruning_history"] == result.pruning_history
    assert count_params(loaded) == result.params_after
    x = images()
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x)):
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6)


def test_pruned_model_trains_and_exports(tmp_path):
    model = copy.deepcopy(pruned(0.4).model).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    boxes, logits, feats = model.forward_train(images())
    loss = boxes.sum() + logits.sum() + sum(f.sum() for f in feats)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    w = model.head.cls_pred.weight.detach().clone()
    opt.step()
    assert not torch.equal(w, model.head.cls_pred.weight)

    model.eval()
    x = images(1)
    f = tmp_path / "pruned.onnx"
    torch.onnx.export(model, x, str(f), opset_version=13, input_names=["images"],
                      output_names=["boxes", "scores"], dynamo=False)
    onnx.checker.check_model(onnx.load(str(f)))
    sess = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
    onnx_boxes, onnx_scores = sess.run(["boxes", "scores"], {"images": x.numpy()})
    with torch.no_grad():
        boxes, scores = model(x)
    np.testing.assert_allclose(onnx_boxes, boxes.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(onnx_scores, scores.numpy(), rtol=1e-4, atol=1e-5)


def test_l1_round_to_keeps_mode_and_batchnorm_stats():
    model = fresh_model().train()
    result = prune(model, 0.3, IMGSZ, importance="l1", round_to=4, verbose=False)
    assert abs(result.achieved_sparsity - 0.3) <= 0.02
    assert model.training  # mode restored; tracing ran in eval mode, so no BatchNorm statistics were updated
    assert all(int(m.num_batches_tracked) == 0 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert model.head.levels[0].stem[0][0].in_channels % 4 == 0
    with torch.no_grad():
        assert model.eval()(images())[1].shape == (2, N_ANCHORS, NC)


def test_round_to_one_is_any_channel_count():
    """`prune.round_to: 1` (params.yaml's default) prunes exactly as no rounding does: the library maps it to
    torch-pruning's None, so the stage and bench scripts pass the key through unchanged."""
    def state(round_to):
        return prune(fresh_model().eval(), 0.3, IMGSZ, round_to=round_to, verbose=False).model.state_dict()

    one, none = state(1), state(None)
    assert one.keys() == none.keys()
    assert all(torch.equal(one[k], none[k]) for k in one)


def test_pruning_a_pruned_checkpoint_appends_history(tmp_path):
    first = pruned(0.3)
    save_checkpoint(tmp_path / "a.pt", first.model, ["a", "b", "c"], IMGSZ, pruning_history=first.pruning_history)
    model, ckpt = load_model(tmp_path / "a.pt")
    second = prune(model, 0.2, IMGSZ, verbose=False)  # relative to the already-pruned model
    assert second.params_before == first.params_after and abs(second.achieved_sparsity - 0.2) <= 0.02
    history = ckpt["pruning_history"] + second.pruning_history  # as stages/prune.py stores it
    save_checkpoint(tmp_path / "b.pt", model, ckpt["names"], IMGSZ, pruning_history=history)
    loaded, _ = load_model(tmp_path / "b.pt")
    assert count_params(loaded) == second.params_after
    x = images()
    with torch.no_grad():
        for a, b in zip(model.eval()(x), loaded(x)):
            assert torch.allclose(a, b, atol=1e-6)


def test_replay_rejects_foreign_history():
    from pipeline.compress.prune import replay_pruning

    with pytest.raises(ValueError, match="pruning_history"):
        replay_pruning(fresh_model(), [["neck.no_such_layer", True, [0]]], IMGSZ)
    with pytest.raises(ValueError, match="pruning_history"):
        replay_pruning(fresh_model(), "not a history", IMGSZ)


def test_prune_to_bytes_lands_in_the_top_three_percent_under_the_target():
    from pipeline.compress.bytes_model import BytesFit, predicted_tflite_bytes
    from pipeline.compress.prune import prune_to_bytes

    fit = BytesFit(overhead=50_000.0, per_channel=28.0, max_rel_error=0.0)
    model = fresh_model()
    target = int(0.7 * predicted_tflite_bytes(model, fit))
    result, predicted = prune_to_bytes(model, target, IMGSZ, fit, verbose=False)
    assert 0.97 * target <= predicted <= target
    assert predicted == predicted_tflite_bytes(model, fit) and result.params_after < result.params_before


@pytest.mark.parametrize("factor, message", [(1.2, "needs no pruning"), (0.01, "out of reach")])
def test_prune_to_bytes_refuses_targets_it_cannot_meet(factor, message):
    from pipeline.compress.bytes_model import BytesFit, predicted_tflite_bytes
    from pipeline.compress.prune import prune_to_bytes

    fit = BytesFit(overhead=50_000.0, per_channel=28.0, max_rel_error=0.0)
    model = fresh_model()
    with pytest.raises(ValueError, match=message):
        prune_to_bytes(model, int(factor * predicted_tflite_bytes(model, fit)), IMGSZ, fit, verbose=False)


def test_a_variant_without_a_bytes_model_is_refused_naming_the_bench():
    from pipeline.compress.bytes_model import fit_for

    with pytest.raises(ValueError, match=r"leafyolo_s' with tflite.quant_type='per-tensor'(.|\n)*bench.tflite_bytes"):
        fit_for("leafyolo_s", "per-tensor")
    for quant_type in ("per-tensor", "per-channel"):  # the default variant has a fit for each granularity
        assert fit_for("leafyolo_u", quant_type).max_rel_error < 0.01


def test_counting_conv_calls_leaves_each_module_in_its_own_mode():
    """The count runs one eval pass; afterwards a frozen part kept in eval stays in eval and the rest in train,
    and the running BatchNorm statistics are untouched."""
    from pipeline.compress.bytes_model import conv_totals

    model = fresh_model().train()
    model.backbone.eval()
    before = {m: m.training for m in model.modules()}
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    weights, channels = conv_totals(model)
    assert weights > 0 and channels > 0
    assert {m: m.training for m in model.modules()} == before and model.training and not model.backbone.training
    assert all(torch.equal(stats[k], v) for k, v in model.state_dict().items())
