"""The one range of `prune.sparsity` (the fraction of the student's parameters removed): params parsing, the pruner
and the API's `compression_ratio` all check against it here."""

from __future__ import annotations

import numbers
from typing import Any

MAX_SPARSITY = 0.95  # at most this fraction of the parameters can be pruned away


def check_sparsity(value: Any, key: str = "prune.sparsity") -> float:
    """`value` as a float when it is a number in [0, MAX_SPARSITY], else a ValueError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= MAX_SPARSITY:
        raise ValueError(f"{key} must be a number in [0, {MAX_SPARSITY}] (the fraction of the parameters removed), "
                         f"got {value!r}")
    return float(value)
