"""Structured channel pruning to a target fraction of PARAMETERS, stored as replayable history (Torch-Pruning).

Torch-Pruning's `pruning_ratio` removes that fraction of the channels of every group (local pruning), which
removes roughly `1 - (1 - ratio) ** 2` of the parameters, but not exactly: the input conv, the output convs
and groups torch-pruning cannot prune keep their width. `prune` therefore searches the channel ratio on
deep copies until the parameter fraction lands within `tol` of the target, then applies the winning
copy's pruning history to the model itself.

`pruning_history` is a list of `[module_name, is_out_channel_pruning, [channel indices]]` (plain Python,
JSON-serialisable). `replay_pruning` applies it to a freshly built model of the same variant/nc/act;
`pipeline.io.model_loader.build_model` does that, so a pruned checkpoint rebuilds its own architecture.
The history of pruning an already-pruned model is relative to that model: append it to the earlier one.
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from pipeline.compress.sparsity import MAX_SPARSITY, check_sparsity
from pipeline.model.count import count_params
from pipeline.model.modes import eval_mode

# "taylor" is left out on purpose: torch-pruning 1.6.1's TaylorImportance scores the groups rooted at the Ghost
# modules' depthwise convs with twice too many entries, which leaves convs whose weights disagree with their
# in/out_channels (the model no longer runs). Magnitude importance handles these groups correctly.
IMPORTANCES = ("l1", "l2")
MAX_CHANNEL_RATIO = 0.9  # search bound; leafyolo_u keeps ~3 % of its parameters there, more than MAX_SPARSITY needs
MAX_SEARCH_STEPS = 12

History = list[list[Any]]  # [[module_name: str, is_out_channel_pruning: bool, idxs: list[int]], ...]


@dataclass
class PruneResult:
    model: nn.Module  # the pruned model (the same object that was passed in, pruned in place)
    params_before: int
    params_after: int
    flops_before: int  # multiply-accumulates (MACs) of one image at imgsz, as tp.utils.count_ops_and_params counts
    flops_after: int
    achieved_sparsity: float  # 1 - params_after / params_before
    pruning_history: History
    channel_ratio: float = 0.0  # the per-group channel pruning ratio the search settled on


def count_macs(model: nn.Module, imgsz: int) -> int:
    """MACs of one forward pass at `imgsz` (torch-pruning's counter works on a deep copy)."""
    x = torch.zeros(1, 3, imgsz, imgsz, device=_device(model))
    with torch.no_grad():
        macs, _ = tp.utils.count_ops_and_params(model, x)
    return int(macs)


def prune(model: nn.Module, sparsity: float, imgsz: int, importance: str = "l2", round_to: int | None = None,
          tol: float = 0.02, verbose: bool = True, measure: Callable[[nn.Module], float] | None = None) -> PruneResult:
    """Remove `sparsity` of the model's parameters (within `tol`) by channel pruning, in place.

    measure: what `sparsity` is a fraction of (default the parameter count); `prune_to_bytes` passes the
        predicted size of the INT8 file.
    importance: "l2" or "l1" norm of each channel's weights across its coupled group (torch-pruning's
        MagnitudeImportance).
    round_to: keep every pruned group's channel count a multiple of this (coarser steps, may miss `tol`); None or
        1: any count.
    tol: the achieved parameter fraction must be within this of `sparsity` (ValueError otherwise).
    verbose: print one numbered line per search trial (each trial prunes a deep copy, ~1 s for leafyolo_u).
    The head's output convs (`head.cls_pred`, `head.box_pred`) keep their output channels.
    """
    _validate(sparsity, imgsz, importance, round_to, tol)
    measure = measure or count_params
    x = _example_inputs(model, imgsz)
    params_before, flops_before = count_params(model), count_macs(model, imgsz)
    size_before = measure(model)
    if sparsity == 0:
        return PruneResult(model, params_before, params_before, flops_before, flops_before, 0.0, [], 0.0)

    def trial(ratio: float) -> tuple[float, History]:
        work = copy.deepcopy(model)
        history = _prune_in_place(work, ratio, importance, round_to, x)
        _check_structure(work)
        return 1.0 - measure(work) / size_before, history

    log = print if verbose else (lambda _msg: None)
    ratio, achieved, history = _search_ratio(trial, float(sparsity), tol, log)
    if abs(achieved - sparsity) > tol:
        raise ValueError(f"prune.sparsity={sparsity} cannot be reached within {tol}: the closest is {achieved:.4f} "
                         f"(channel ratio {ratio:.4f}, round_to={round_to}); at most about "
                         f"{MAX_SPARSITY} can be removed, and a large round_to makes the steps coarse")

    with torch.no_grad():
        shapes_before = [tuple(t.shape) for t in _eval_forward(model, x)]
    _replay_in_place(model, history, x)
    params_after = count_params(model)
    assert abs(1.0 - measure(model) / size_before - achieved) < 1e-9, "replayed pruning differs from the searched copy"
    with torch.no_grad():
        assert [tuple(t.shape) for t in _eval_forward(model, x)] == shapes_before, "pruning changed the output shapes"
    return PruneResult(model, params_before, params_after, flops_before, count_macs(model, imgsz),
                       1.0 - params_after / params_before, history, ratio)


def replay_pruning(model: nn.Module, history: History, imgsz: int) -> nn.Module:
    """Re-apply a stored `pruning_history` to a freshly built model (same variant, nc, act); returns it."""
    if not isinstance(history, (list, tuple)) or not all(
            isinstance(h, (list, tuple)) and len(h) == 3 and isinstance(h[0], str) for h in history):
        raise ValueError("pruning_history must be a list of [module_name, is_out_channel_pruning, indices] "
                         f"entries, got {str(history)[:200]}")
    if not history:
        return model
    _replay_in_place(model, _plain_history(history), _example_inputs(model, imgsz))
    return model


# --- search -----------------------------------------------------------------------------------------------

def _search_ratio(trial: Callable[[float], tuple[float, History]], target: float, tol: float,
                  log: Callable[[str], None]) -> tuple[float, float, History]:
    """Find the channel ratio whose pruned copy removes `target` of the parameters.

    Parameter sparsity is non-decreasing in the channel ratio, and u = 1 - sqrt(1 - sparsity) is close to
    proportional to it. Until the target is bracketed, each step rescales the ratio by u(target) / u(achieved);
    once bracketed, it interpolates in u, kept inside the inner 90 % of the bracket so the bracket always
    shrinks. Stops within tol / 2 (usually after 2-3 trials); returns the closest trial.
    """
    def u(s: float) -> float:
        return 1.0 - math.sqrt(max(0.0, 1.0 - s))

    lo, u_lo = 0.0, 0.0
    hi, u_hi = None, None
    ratio = min(u(target), MAX_CHANNEL_RATIO)
    best: tuple[float, float, History] | None = None
    for step in range(1, MAX_SEARCH_STEPS + 1):
        achieved, history = trial(ratio)
        log(f"[prune {step}/{MAX_SEARCH_STEPS}] channel ratio {ratio:.4f} -> {achieved:.2%} of the parameters "
            f"removed (target {target:.2%} +- {tol:.2%})")
        if best is None or abs(achieved - target) < abs(best[1] - target):
            best = (ratio, achieved, history)
        if abs(achieved - target) <= tol / 2:
            break
        if achieved < target:
            lo, u_lo = ratio, u(achieved)
        else:
            hi, u_hi = ratio, u(achieved)
        if hi is None:  # not bracketed yet: rescale, up to the largest safe ratio
            if lo >= MAX_CHANNEL_RATIO:
                break  # the target is out of reach
            ratio = min(lo * u(target) / u_lo if u_lo > 0 else 2 * lo, MAX_CHANNEL_RATIO)
            continue
        if hi - lo < 1e-4:
            break  # one channel step spans the tolerance (large round_to)
        frac = (u(target) - u_lo) / (u_hi - u_lo) if u_hi > u_lo else 0.5
        ratio = lo + min(max(frac, 0.05), 0.95) * (hi - lo)
    assert best is not None
    return best


# --- torch-pruning ----------------------------------------------------------------------------------------

def _prune_in_place(model: nn.Module, ratio: float, importance: str, round_to: int | None,
                    x: torch.Tensor) -> History:
    """One local (per-group) pruning step at `ratio`; returns its history."""
    with _tracing(model):
        pruner = tp.pruner.BasePruner(
            model, x, tp.importance.MagnitudeImportance(p=1 if importance == "l1" else 2),
            global_pruning=False, pruning_ratio=ratio,
            ignored_layers=[model.head.cls_pred, model.head.box_pred],
            round_to=round_to if round_to and round_to > 1 else None,  # 1: any count, torch-pruning's None
            # fresh dicts: torch-pruning's defaults are shared mutable dicts that would keep every copy alive
            in_channel_groups={}, out_channel_groups={}, num_heads={},
        )
        pruner.step()
    return _plain_history(pruner.pruning_history())


def _replay_in_place(model: nn.Module, history: History, x: torch.Tensor) -> None:
    with _tracing(model):
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=x, verbose=False)
        try:
            graph.load_pruning_history(copy.deepcopy(history))
        except (AttributeError, ValueError, IndexError, RuntimeError) as exc:
            raise ValueError(f"pruning_history does not fit this {getattr(model, 'variant', '')} model "
                             f"(was it recorded on another variant, nc or act?): {exc}") from exc


@contextmanager
def _tracing(model: nn.Module) -> Iterator[None]:
    """Trace in eval mode (BatchNorm statistics untouched) with autograd on, as torch-pruning requires."""
    with eval_mode(model), torch.enable_grad(), warnings.catch_warnings():
        # head.levels.*.scale.value are 0-d parameters with nothing to prune; torch-pruning warns about them anyway
        warnings.filterwarnings("ignore", message="Unwrapped parameters detected")
        yield


def _check_structure(model: nn.Module) -> None:
    """Every conv/BN's weights must match its channel attributes (guards against torch-pruning bugs)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            ok = m.in_channels % m.groups == 0 and \
                tuple(m.weight.shape[:2]) == (m.out_channels, m.in_channels // m.groups)
        elif isinstance(m, nn.BatchNorm2d):
            ok = m.weight.shape[0] == m.num_features == m.running_mean.shape[0]
        else:
            continue
        if not ok:
            raise RuntimeError(f"torch-pruning left {name} inconsistent ({m}, weight {tuple(m.weight.shape)})")


def _eval_forward(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with eval_mode(model):
        return model(x)


def _plain_history(history: Any) -> History:
    """[[name, is_out, idxs], ...] with plain str/bool/int (torch-pruning may hold tensors or index tuples)."""
    plain = []
    for name, is_out, idxs in history:
        idxs = idxs.tolist() if isinstance(idxs, torch.Tensor) else idxs
        plain.append([str(name), bool(is_out), [int(getattr(i, "idx", i)) for i in idxs]])
    return plain


# --- inputs -----------------------------------------------------------------------------------------------

def _validate(sparsity: Any, imgsz: Any, importance: Any, round_to: Any, tol: Any) -> None:
    check_sparsity(sparsity)
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < 32 or imgsz % 32:
        raise ValueError(f"imgsz must be a positive multiple of 32, got {imgsz!r}")
    if importance not in IMPORTANCES:
        raise ValueError(f"prune.importance must be one of {list(IMPORTANCES)}, got {importance!r}")
    if round_to is not None and (isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1):
        raise ValueError(f"round_to must be None or a positive int, got {round_to!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _example_inputs(model: nn.Module, imgsz: int) -> torch.Tensor:
    """The batch torch-pruning traces: a fixed random image at imgsz (the trace needs shapes, not content)."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, imgsz, imgsz, generator=generator).to(_device(model))


def prune_to_bytes(model: nn.Module, target_bytes: int, imgsz: int, fit, importance: str = "l2",
                   verbose: bool = True, round_to: int | None = None) -> tuple[PruneResult, float]:
    """Prune so the predicted INT8 TFLite file (`pipeline.compress.bytes_model`) lands in the top 3 % under
    `target_bytes`, aiming at 98.5 % of it; returns (result, predicted bytes). The tflite stage checks the real file."""
    from pipeline.compress.bytes_model import predicted_tflite_bytes

    def size(m: nn.Module) -> float:
        return predicted_tflite_bytes(m, fit)

    before = size(model)
    if before <= target_bytes:
        raise ValueError(f"prune.target_bytes={target_bytes:,} needs no pruning: the unpruned model's INT8 file is "
                         f"predicted at {before:,.0f} bytes; set prune.target_bytes to 0 and prune by prune.sparsity")
    aim = 0.985 * target_bytes
    fraction = 1.0 - aim / before
    if fraction > MAX_SPARSITY:
        raise ValueError(f"prune.target_bytes={target_bytes:,} is out of reach: the file would have to shrink by "
                         f"{fraction:.0%} (at most {MAX_SPARSITY:.0%} of its size can be pruned away)")
    result = prune(model, fraction, imgsz, importance=importance, round_to=round_to, tol=0.01 * aim / before,
                   verbose=verbose, measure=size)
    return result, size(model)
