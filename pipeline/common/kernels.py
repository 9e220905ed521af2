"""Portable CPU kernels: the same training bytes on any x86-64 CPU with AVX2, Intel or AMD.

torch's CPU results depend on three dispatchers that look at the CPU they run on (measured, docs/reproducibility.md):
ATen's vectorised kernels (AVX-512 on a recent Xeon, AVX2 on most AMD EPYCs), oneDNN's convolutions (the widest
ISA the CPU has), and MKL's BLAS and vector math (MKL takes other code paths on non-Intel CPUs unless asked for
its COMPATIBLE branch). `PORTABLE_ENV` pins all three to what every AVX2 CPU has. Read once, when torch loads its
libraries, so `pin_portable_kernels` must run before torch is imported: `stages/__init__.py` calls it, so every
`python -m stages.<name>` runs pinned. It costs 3-10 % of CPU training speed on an AVX-512 Xeon.

Two MKL vector-math functions still differ between CPUs in that branch (square root and arctangent: they use
approximate reciprocal instructions): the training code takes them from ATen instead (`pipeline/train/iou.py`), and
AdamW runs its fused kernel.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

PORTABLE_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"}


def pin_portable_kernels(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set `PORTABLE_ENV` in `environ` (this process and its children). Raises RuntimeError when torch is already
    imported with other values: they would not take effect, and the run would silently depend on the CPU."""
    differ = {k: v for k, v in PORTABLE_ENV.items() if environ.get(k) != v}
    if differ and "torch" in sys.modules and environ is os.environ:
        raise RuntimeError(f"pin_portable_kernels() must run before torch is imported (to set {differ})")
    environ.update(PORTABLE_ENV)
