"""TorchScript of a LeafYOLO, checked against the eager model before it is handed out.

`torch.jit.script`, with one adaptation: `SharedHead.forward` zips its ModuleList of scales with the runtime list of
feature maps, which the compiler refuses ("Can not iterate over a module list ... statically determinable length").
`scriptable` swaps in `ScriptableHead`, the same loop over the ModuleList (which TorchScript unrolls), the same
submodules (same state_dict keys) and the same ops in the same order. Everything else compiles as written, and the
scripted model keeps the batch and the image size dynamic (any multiple of 32). `torch.jit.trace` also reproduces
the model (the forward has no data-dependent control flow) but would bake in whatever Python ran once.
On CPU the scripted model runs the same aten kernels in the same order (torch's CPU fuser is off by default), so its
outputs equal the eager model's bit for bit; `script_model` raises if they ever do not.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

CHECK_CALLS = 3  # the profiling executor optimises the graph after its first calls: check what later calls return


class ScriptableHead(nn.Module):
    """`SharedHead` (pipeline/model/head.py) with its level loop written the way TorchScript compiles it."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.levels, self.cls_pred, self.box_pred = head.levels, head.cls_pred, head.box_pred
        self.nc, self.strides = int(head.nc), [float(s) for s in head.strides]

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        boxes, logits = [], []
        for i, level in enumerate(self.levels):
            x = level.stem(feats[i])
            cls = self.cls_pred(level.cls_branch(x))
            box = torch.relu(level.scale(self.box_pred(level.box_branch(x)))) * self.strides[i]
            b = cls.shape[0]
            logits.append(cls.reshape(b, self.nc, -1))
            boxes.append(box.reshape(b, 4, -1))
        return torch.cat(boxes, 2).permute(0, 2, 1), torch.cat(logits, 2).permute(0, 2, 1)


def scriptable(model: nn.Module) -> nn.Module:
    """A copy of `model` (eval mode, CPU) that `torch.jit.script` compiles: its head swapped for `ScriptableHead`."""
    work = copy.deepcopy(model).cpu().eval()
    work.head = ScriptableHead(work.head)
    return work


def script_model(model: nn.Module, check_sizes: tuple[int, ...] = (64,), batch: int = 2) -> torch.jit.ScriptModule:
    """The scripted model, whose (boxes, scores) equal the eager model's exactly on a seeded random batch at each size
    of `check_sizes`; RuntimeError otherwise."""
    eager = copy.deepcopy(model).cpu().eval()
    scripted = torch.jit.script(scriptable(eager))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for size in check_sizes:
            x = torch.rand(batch, 3, size, size, generator=generator)
            want = eager(x)
            for _ in range(CHECK_CALLS):
                for name, a, b in zip(("boxes", "scores"), scripted(x), want):
                    if not torch.equal(a, b):
                        diff = (a - b).abs().max().item() if a.shape == b.shape else f"shape {tuple(a.shape)}"
                        raise RuntimeError(f"the scripted model's {name} differ from the eager model's at {size}px "
                                           f"(max |diff| {diff})")
    return scripted
