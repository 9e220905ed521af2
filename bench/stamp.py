"""Bench and study reports: a provenance line (commit, machine, date, command) and the Markdown + JSON files."""

from __future__ import annotations

import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from pipeline.io.atomic import atomic_write_text
from pipeline.io.jsonio import write_json


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
    """The command that is running, as `python -m bench.<script> <args>` (or `studies.<script>`), quoted for a
    POSIX shell so that it runs as printed (`--set 'a=1 b=2'`)."""
    script = Path(sys.argv[0]).resolve()
    try:
        module = ".".join(script.relative_to(REPO).with_suffix("").parts)
    except ValueError:
        module = script.stem
    return " ".join(["python -m", module, shlex.join(sys.argv[1:])]).rstrip()


HEAD_FIX = "7ffa373"  # one BatchNorm per level in the shared head: reports from before it measured another model
STAMP = re.compile(r"^commit (?P<commit>[0-9a-f]{7,40})[^\n]*?, (?P<cores>\d+) cores \((?P<cpu>.*)\), "
                   r"(?P<date>\d{4}-\d\d-\d\d)", re.M)  # the line stamp() writes: commit, cores (CPU), date


# The default trains the student alone (no teacher): reports of the default recipe's own runs from before it measured
# the chain with a teacher.
RECIPE_FIX = "8d5027e"
RECIPE_REPORTS = ("pipeline_sweep",)

# The TFLite conversion gives the convolution whose explicit PAD set the TFLM arena a wider kernel instead
# (pipeline/export/graph_prep.py, rewrite 4): reports with INT8 TFLite bytes, arenas or LiteRT times from before it
# measured files with that PAD.
PAD_FIX = "0ab59ec"
PAD_REPORTS = ("accuracy_compare", "chain_vs_alone", "deploy_compare", "op_profile", "pipeline_sweep",
               "quant_granularity", "seed_spread", "tflm_arena")


def older_than(fix: str, commit: str) -> bool:
    """Whether `commit` lacks `fix`: asked of git, False where it cannot say (or no fix is set)."""
    if not fix:
        return False
    proc = subprocess.run(["git", "merge-base", "--is-ancestor", fix, commit], cwd=REPO, capture_output=True)
    return proc.returncode == 1


def older_than_head_fix(commit: str) -> bool:
    """Whether `commit` lacks HEAD_FIX (the model then had the old head)."""
    return older_than(HEAD_FIX, commit)


def stale(name: str, commit: str) -> list[str]:
    """What report `name`, made at `commit`, measured that the current code no longer makes (empty when current)."""
    out = [f"the model before its per-level head BatchNorms ({HEAD_FIX})"] if older_than_head_fix(commit) else []
    if name in RECIPE_REPORTS and older_than(RECIPE_FIX, commit):
        out.append(f"the default chain with a teacher, before the student-alone default ({RECIPE_FIX})")
    if name in PAD_REPORTS and older_than(PAD_FIX, commit):
        out.append(f"TFLite files with the explicit PAD that set the arena ({PAD_FIX})")
    return out


def stamp() -> str:
    return (f"Command: `{command()}`  \ncommit {commit()}, {os.cpu_count()} cores ({cpu_model()}), "
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")


def write_report(out: str | Path, lines: list[str], rows: Any) -> None:
    """Write the Markdown report `out` and its rows as `out` with a .json suffix (both atomically); print it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "\n".join(lines) + "\n")
    write_json(out.with_suffix(".json"), rows)
    print("\n".join(lines))
