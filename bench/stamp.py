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


REPO = Path(__file__).resolve().parents[1]


def command() -> str:
    """The command that is running, as `python -m bench.<script> <args>`."""
    script = Path(sys.argv[0]).resolve()
    try:
        module = ".".join(script.relative_to(REPO).with_suffix("").parts)
    except ValueError:
        module = script.stem
    return " ".join(["python -m", module, *sys.argv[1:]])


def stamp() -> str:
    return (f"Command: `{command()}`  \ncommit {commit()}, {os.cpu_count()} cores ({cpu_model()}), "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
