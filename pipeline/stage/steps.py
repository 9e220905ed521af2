"""Stage plumbing shared by every stage module: numbered progress lines, argv parsing and atomic metrics files."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import psutil

from pipeline.io.jsonio import write_json


class Steps:
    """Prints `[distill 3/7] calibrating on 300 images`."""

    def __init__(self, stage: str, total: int):
        self.stage, self.total, self.n = stage, total, 0
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        self.n += 1
        print(f"[{self.stage} {self.n}/{self.total}] {message}", flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def write_metrics(self, path: str | Path, metrics: dict[str, Any]) -> None:
        """Write the stage's metrics file with its wall time as `seconds` (process start to now, imports included:
        what the stage costs in a `dvc repro`)."""
        write_json(path, {**metrics, "seconds": round(process_seconds(), 1)})


def process_seconds() -> float:
    """Wall-clock seconds since this process started, to the kernel's clock tick (10 ms on Linux).

    On Linux both ends are read from the boot clock: the process's start tick in /proc/self/stat and
    CLOCK_BOOTTIME now. psutil's `create_time()` adds the start tick to /proc/stat's boot time, which is whole
    seconds, so its age of a process can be up to a second off. Elsewhere psutil is the fallback."""
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, starttime; the name may hold spaces
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError, IndexError):  # no procfs, no CLOCK_BOOTTIME (macOS, Windows)
        return time.time() - psutil.Process().create_time()


def stage_args(description: str, *paths: tuple[str, str]) -> argparse.Namespace:
    """Parse `--params` plus the stage's named paths (each required, exactly as listed in dvc.yaml)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    for name, help_text in paths:
        parser.add_argument(f"--{name}", required=True, help=help_text)
    return parser.parse_args()
