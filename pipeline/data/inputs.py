"""Inputs from outside the project (a user's dataset, a user's teacher) must lie inside the path dvc.yaml hashes
for them (`data.dep`, `teacher.dep`); otherwise editing them would leave `dvc status` clean."""

from __future__ import annotations

from pathlib import Path

from pipeline.config.params import ParamsError


def check_dep_covers(dep: str, paths: dict[str, Path], key: str) -> None:
    """Every input must lie inside `dep`, the path dvc.yaml hashes for this stage: otherwise editing the input
    would leave `dvc status` clean and `dvc repro` would re-run nothing."""
    if not paths:
        return  # nothing from outside the project (the generated dataset, a teacher trained here)
    root = Path(dep).resolve()
    if not Path(dep).exists():
        raise ParamsError(f"{key}={dep!r} does not exist; expected the file or folder DVC hashes for this input")
    for role, path in paths.items():
        resolved = path.resolve()
        if resolved != root and root not in resolved.parents:
            raise ParamsError(f"{key}={dep!r} does not contain {resolved} ({role}); set {key} to a folder holding "
                              f"every input file (e.g. the dataset's root), so DVC re-runs the chain when one changes")
