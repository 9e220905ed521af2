"""The data layer's error type: bad user data names the file, the line and what was expected."""

from __future__ import annotations

from pathlib import Path


class DatasetError(ValueError):
    """Invalid dataset input. ``str(err)`` reads ``<path>, line <n>: <problem>``."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")
