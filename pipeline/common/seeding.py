"""Seeding: every random stream of a run derives from the seeds in params.yaml, so the same params, seed,
machine and thread count give the same bytes.

`seed_everything` is called at the start of each stage and of every training run, before any model, adapter or
dataset is built. Model construction additionally draws its initial weights under `seeded(seed)` (a forked
generator), so a model built with the same seed has the same weights whatever ran before in the process.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def warm_up_math_kernels() -> None:
    """Make the first vectorised math call of every intra-op thread before any result depends on it.

    The MKL vector-math kernels inside torch's CPU build sometimes run a thread's FIRST call (sqrt, exp, ...) in
    a low-accuracy mode (relative error ~3e-4 instead of ~1e-7): measured as 2 of 30 fresh processes. One
    throw-away call per thread, large enough to be split across all of them, makes every later call exact, so
    two runs of the same params give the same bits. Call it again after changing the thread count.
    """
    torch.ones(max(1, torch.get_num_threads()) * (1 << 15)).exp()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device), ask torch for deterministic kernels, and warm up
    its vector-math kernels (`warm_up_math_kernels`)."""
    warm_up_math_kernels()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded to `seed`; the generator's state outside is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of one epoch: a function of (seed, epoch) only, so a resumed run sees the same order."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g).tolist()
