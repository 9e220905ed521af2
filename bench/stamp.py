"""Provenance line for every bench report: commit, machine (cores, CPU model), date, and the command."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True).stdout.strip()
        return sha.stdout.strip() + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def stamp() -> str:
    command = "python -m " + Path(sys.argv[0]).with_suffix("").as_posix().replace("/", ".") + \
        "".join(f" {a}" for a in sys.argv[1:]) if sys.argv and sys.argv[0] else "?"
    return (f"Command: `{command}`  \ncommit {commit()}, {os.cpu_count()} cores ({cpu_model()}), "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
