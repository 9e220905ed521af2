"""TorchScript of a LeafYOLO, checked against the eager model before it is handed out.

`torch.jit.script` compiles the model as written: `SharedHead.forward` loops over its ModuleList of levels with
`enumerate` (the form TorchScript unrolls; zipping it with the runtime list of feature maps is refused), and the
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


def scriptable(model: nn.Module) -> nn.Module:
    """A copy of `model` (eval mode, CPU) for `torch.jit.script`."""
    return copy.deepcopy(model).cpu().eval()


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
