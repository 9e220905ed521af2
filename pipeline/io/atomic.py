"""Atomic file and folder writes: write to a temporary sibling, then rename into place.

A process killed mid-write leaves a temporary sibling named after its PID (`.<name>.<pid>.<random>.tmp`), never a
partial file at the artifact's own path; the next write of that path removes the leftovers of dead writers.

A write that fails (a full disk: ENOSPC, a quota, a file-size limit) raises `WriteFailed`, an OSError that names
the file or folder being written and says the previous one is untouched; the temporary sibling is removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.common.faults import fault_point

FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class WriteFailed(OSError):
    """Writing an artifact failed; the message names it and what to do, the previous version is untouched."""


def write_failed(path: Path, e: OSError) -> WriteFailed:
    """`e` (raised while writing `path` or its temporary sibling) as a WriteFailed naming `path`."""
    hint = "; free some disk space and run the stage again" if e.errno in FULL_DISK else ""
    return WriteFailed(e.errno, f"{path}: could not be written ({e.strerror or e}); the previous version, if any, "
                                f"is untouched{hint}")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            half = len(data) // 2
            f.write(data[:half])
            f.flush()
            fault_point("write", path)  # a kill here leaves half a temporary file, never half an artifact
            f.write(data[half:])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteFailed) and e.filename is None:
            raise write_failed(path, e) from e
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` onto ``dst`` atomically (the files copied here are a few MB at most); returns ``dst``."""
    atomic_write_bytes(dst, Path(src).read_bytes())
    return Path(dst)


def temp_prefix(path: Path) -> str:
    """`.<name>.<pid>.`: a temporary sibling names its writer, so a later write can tell a dead writer's leftover
    (a killed run's) from a live one's."""
    return f".{path.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    """Whether `pid` runs. A killed writer whose parent died too can stay a zombie where nothing reaps it (a
    container whose first process does not): a zombie writes nothing, so it counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def remove_stale_siblings(path: Path) -> list[Path]:
    """Remove the temporary siblings of `path` (`.<name>.<pid>.*.tmp` or `.old`) left by writers that no longer
    run: a run killed mid-write leaves one; the next write of the same path clears it. Returns what was removed."""
    removed = []
    if not path.parent.is_dir():
        return removed
    head = f".{path.name}."
    for sibling in path.parent.iterdir():
        name = sibling.name
        if not (name.startswith(head) and name.endswith((".tmp", ".old"))):
            continue
        pid = name[len(head):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed


def _replaceable(out_dir: Path, marker: str) -> bool:
    return not any(out_dir.iterdir()) or (out_dir / marker).is_file()


@contextlib.contextmanager
def atomic_dir(out_dir: str | Path, marker: str = "data.yaml") -> Iterator[Path]:
    """Yield a temporary folder next to ``out_dir``; on success it replaces ``out_dir`` in one rename.

    An existing ``out_dir`` is replaced only if it is empty or holds ``marker`` (a ``data.yaml``: a dataset we
    made; a web bundle's ``manifest.json``); anything else raises ``FileExistsError`` so user folders are never
    deleted. On error the temporary folder is removed and ``out_dir`` is left untouched.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not (out_dir.is_dir() and _replaceable(out_dir, marker)):
        raise FileExistsError(f"{out_dir}: exists and is not a folder this project wrote (no {marker}); "
                              "refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(out_dir)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=temp_prefix(out_dir), suffix=".tmp"))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        fault_point("dir", out_dir)  # a kill here leaves a complete temporary folder, never a half-filled one
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=temp_prefix(out_dir), suffix=".old"))
            os.replace(out_dir, old / "d")
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and not isinstance(e, WriteFailed) and e.errno in FULL_DISK:
            raise write_failed(out_dir, e) from e
        raise
