"""Fault points: where the kill test (bench/faults.py, tests/test_faults.py) stops a run with SIGKILL.

The code calls `fault_point(name, detail)` at the moments a kill would hurt most: halfway through writing an
artifact's temporary file (`write`), with a finished folder not yet renamed into place (`dir`), and after an
optimizer step (`step`). Without the two variables below it returns at once and does nothing.

- `LEAFYOLO_FAULT="<stage>:<point>:<name>[,...]"`: the first arrival at `point` named `name` (the step number; the
  file or folder name, without its folder) in `python -m stages.<stage>` kills the process's whole process group
  with SIGKILL, as a power cut or an OOM kill would end `dvc repro` and its stage (the test starts `dvc repro` in
  its own session, so nothing else is in the group).
- `LEAFYOLO_FAULT_TRACE=<file>`: every arrival appends `<stage> <point> <n> <name>` to the file (an uninterrupted
  run lists the points a kill can be aimed at; `n` counts the arrivals at `point` in the process).
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter

FAULT_ENV = "LEAFYOLO_FAULT"
TRACE_ENV = "LEAFYOLO_FAULT_TRACE"

_arrivals: Counter[str] = Counter()


def stage_name() -> str:
    """`teacher` in `python -m stages.teacher`; "" outside a stage."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", "") or ""
    return name.removeprefix("stages.") if name.startswith("stages.") else ""


def point_name(detail: object) -> str:
    """What a kill is aimed at: a path's file name, anything else as text."""
    return detail.name if isinstance(detail, os.PathLike) else str(detail).rsplit("/", 1)[-1]


def fault_point(point: str, detail: object = "") -> None:
    """Count an arrival at `point` (`detail`: a path or a step number); trace it and kill the process group where
    the environment asks to."""
    faults, trace = os.environ.get(FAULT_ENV), os.environ.get(TRACE_ENV)
    if not (faults or trace):
        return
    stage = stage_name()
    _arrivals[point] += 1
    n = _arrivals[point]
    if trace:
        with open(trace, "a", encoding="utf-8") as f:
            f.write(f"{stage or '-'} {point} {n} {point_name(detail)}\n")
    if faults and stage and f"{stage}:{point}:{point_name(detail)}" in faults.split(","):
        sys.stdout.flush()
        os.killpg(os.getpgrp(), signal.SIGKILL)
