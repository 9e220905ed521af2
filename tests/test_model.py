"""Blocks, variants and the export form of the LEAF-YOLO family."""

import pytest
import torch
from torch import nn

from pipeline.model.blocks import (
    ConvBNAct,
    CSPGhost,
    DWSeparable,
    GhostBottleneck,
    GhostModule,
    InvertedResidualSE,
    MicroAttention,
    SPPFLite,
    SqueezeExcite,
    make_act,
)
from pipeline.model.head import SharedHead
from pipeline.model.leafyolo import LeafYOLO


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("block, c_out, stride, params", [
    (ConvBNAct(8, 16, 3, 2), 16, 2, 8 * 16 * 9 + 2 * 16),
    (DWSeparable(8, 16, 3, 1), 16, 1, 8 * 9 + 2 * 8 + 8 * 16 + 2 * 16),
    (GhostModule(8, 16), 16, 1, 8 * 8 + 2 * 8 + 8 * 9 + 2 * 8),
    (SqueezeExcite(16), 16, 1, 16 * 8 + 8 + 8 * 16 + 16),
    (InvertedResidualSE(8, 16, 2, expand=2.0), 16, 2, None),
    (MicroAttention(16), 16, 1, None),
    (GhostBottleneck(16), 16, 1, None),
    (CSPGhost(16, 32, 2), 32, 1, None),
    (SPPFLite(16, 16), 16, 1, None),
])
def test_block_shapes_and_params(block, c_out, stride, params):
    x = torch.randn(2, block_in(block), 16, 16)
    y = block(x)
    assert y.shape == (2, c_out, 16 // stride, 16 // stride)
    if params is not None:
        assert n_params(block) == params


def block_in(block: nn.Module) -> int:
    return next(m for m in block.modules() if isinstance(m, nn.Conv2d)).in_channels


def test_ghost_module_concatenates_primary_and_cheap_features():
    g = GhostModule(8, 16).eval()
    x = torch.randn(1, 8, 8, 8)
    primary = g.primary(x)
    assert torch.equal(g(x)[:, :8], primary)
    assert torch.allclose(g(x)[:, 8:], g.cheap(primary))


def test_micro_attention_squeezes_to_one_eighth():
    att = MicroAttention(64)
    assert att.squeeze[0].out_channels == 8


def test_inverted_residual_uses_skip_only_when_shapes_match():
    assert InvertedResidualSE(16, 16, 1).residual
    assert not InvertedResidualSE(16, 32, 1).residual
    assert not InvertedResidualSE(16, 16, 2).residual


def test_unknown_activation_is_named():
    with pytest.raises(ValueError, match="gelu"):
        make_act("gelu")


def test_head_weights_are_shared_across_scales():
    head = SharedHead(16, nc=3)
    feats = [torch.randn(1, 16, s, s) for s in (8, 4, 2)]
    boxes, logits = head(feats)
    assert boxes.shape == (1, 64 + 16 + 4, 4) and logits.shape == (1, 84, 3)
    # one set of conv weights: parameters do not grow with the number of levels (only a Scale and BatchNorms per level)
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    assert sum(1 for c in convs if c.out_channels == 3) == 1
    # the stem and branch convs are one object per level; the BatchNorms are not
    assert head.levels[1].stem[1][0] is head.levels[0].stem[1][0] is head.levels[2].stem[1][0]
    assert head.levels[1].box_branch[0][0][0] is head.levels[0].box_branch[0][0][0]
    assert head.levels[1].stem[1][1] is not head.levels[0].stem[1][1]


@pytest.mark.parametrize("variant", ["leafyolo_u", "leafyolo_n", "leafyolo_s"])
def test_each_batchnorm_runs_once_per_forward(variant):
    """A BatchNorm called on several inputs (e.g. once per pyramid level) is trained on per-input batch statistics
    but evaluated with one running average of them all: the eval model would not be the model trained."""
    m = LeafYOLO(variant, nc=3)
    calls: dict[str, int] = {}
    for name, mod in m.named_modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
    m.forward_train(torch.rand(2, 3, 64, 64))
    assert calls and {k: v for k, v in calls.items() if v != 1} == {}


def test_eval_mode_equals_train_mode_given_the_batch_statistics():
    """With every BatchNorm's running statistics set to the batch's own (biased) statistics, eval mode computes
    exactly what training computed on that batch, head included."""
    torch.manual_seed(0)
    m = LeafYOLO("leafyolo_u", nc=3)
    x = torch.rand(4, 3, 64, 64)
    seen: dict[nn.Module, torch.Tensor] = {}
    bns = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)]
    hooks = [bn.register_forward_hook(lambda mod, inp, out: seen.__setitem__(mod, inp[0].detach())) for bn in bns]
    with torch.no_grad():
        train_boxes, train_logits, _ = m.train().forward_train(x)
    for h in hooks:
        h.remove()
    for bn in bns:
        bn.running_mean.copy_(seen[bn].mean((0, 2, 3)))
        bn.running_var.copy_(seen[bn].var((0, 2, 3), unbiased=False))
    with torch.no_grad():
        eval_boxes, eval_logits, _ = m.eval().forward_train(x)
    torch.testing.assert_close(eval_logits, train_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(eval_boxes, train_boxes, rtol=1e-3, atol=1e-3)  # pixels, up to ~64


@pytest.mark.parametrize("variant, lo, hi", [
    ("leafyolo_u", 600_000, 800_000), ("leafyolo_n", 1_000_000, 1_400_000), ("leafyolo_s", 2_200_000, 2_800_000)])
def test_variant_parameter_budgets(variant, lo, hi):
    assert lo <= n_params(LeafYOLO(variant, nc=80)) <= hi


def test_export_form_has_separate_box_and_score_tensors():
    m = LeafYOLO("leafyolo_u", nc=3).eval()
    boxes, scores = m(torch.rand(2, 3, 64, 64))
    n = 8 * 8 + 4 * 4 + 2 * 2
    assert boxes.shape == (2, n, 4) and scores.shape == (2, n, 3)
    assert (boxes >= 0).all() and (scores >= 0).all() and (scores <= 1).all()
    b2, logits, feats = m.forward_train(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, n, 3) and [f.shape[-1] for f in feats] == [8, 4, 2]


def test_invalid_variant_and_nc():
    with pytest.raises(ValueError, match="leafyolo_x"):
        LeafYOLO("leafyolo_x")
    with pytest.raises(ValueError, match="nc"):
        LeafYOLO("leafyolo_u", nc=0)


def test_a_checkpoint_from_the_old_head_layout_fails_naming_the_file(tmp_path):
    """Checkpoints saved before the per-level head (keys head.stem.*, head.scales.*) do not load into it: a clear
    error names the file and the architecture instead of a model with silently missing weights."""
    from pipeline.io.checkpoint import save_checkpoint
    from pipeline.io.model_loader import load_model

    path = tmp_path / "old.pt"
    save_checkpoint(path, LeafYOLO("leafyolo_u", nc=3), ["a", "b", "c"], 64)
    ckpt = torch.load(path, weights_only=False)
    ckpt["model"] = {k.replace("head.levels.0.", "head."): v for k, v in ckpt["model"].items()
                     if not k.startswith(("head.levels.1.", "head.levels.2."))}
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=r"old\.pt: weights do not fit the leafyolo_u architecture"):
        load_model(path)
