"""A write that fails for want of space (issue 27 item 2) stops with an error naming the path, leaves the previous
artifact intact and no temporary file behind, and the same stage succeeds once space is freed."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from pipeline.io import atomic
from pipeline.io.atomic import WriteFailed, atomic_dir
from pipeline.io.jsonio import write_json
from tests.stage_runner import REPO, stage_command


class FullDisk:
    """A file object whose writes fail as on a full disk."""

    def __init__(self, fd: int, mode: str):
        self.f = open(fd, mode)  # noqa: SIM115 (closed in __exit__)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"map50": 0.5})
    before = path.read_bytes()
    monkeypatch.setattr(atomic.os, "fdopen", FullDisk)
    with pytest.raises(WriteFailed, match=rf"{path}: could not be written \(No space left on device\); the previous "
                                          r"version, if any, is untouched; free some disk space") as info:
        write_json(path, {"map50": 0.9})
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    monkeypatch.undo()
    write_json(path, {"map50": 0.9})  # space freed: the same write succeeds
    assert b"0.9" in path.read_bytes()


def test_a_full_disk_inside_a_folder_write_keeps_the_previous_folder(tmp_path):
    out = tmp_path / "dataset"
    with atomic_dir(out) as tmp:
        (tmp / "data.yaml").write_text("nc: 1\n")
    with pytest.raises(WriteFailed, match=rf"{out}: could not be written .* free some disk space"):
        with atomic_dir(out) as tmp:
            (tmp / "data.yaml").write_text("nc: 2\n")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert (out / "data.yaml").read_text() == "nc: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no temporary folder left


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(ValueError, match="mine"):
        with atomic_dir(tmp_path / "d"):
            raise ValueError("mine")
    with pytest.raises(FileNotFoundError) as info:
        with atomic_dir(tmp_path / "d"):
            open(tmp_path / "missing.txt")  # noqa: SIM115
    assert not isinstance(info.value, WriteFailed)


# The teacher stage on a real 5 MiB tmpfs (a private mount namespace: `unshare -rm`), then on a larger one.
NAMESPACE_SCRIPT = r"""
set -u
cd "$WORK"
mount -t tmpfs -o size="$SMALL" none artifacts/teacher
cp "$PREVIOUS" artifacts/teacher/model.pt
"$PY" -m stages.teacher --data artifacts/data/dataset/data.yaml --out artifacts/teacher/model.pt \
  --metrics artifacts/teacher/metrics.json --live artifacts/teacher/live --work artifacts/.resume/teacher \
  > full.out 2> full.err
echo "full_rc=$?"
md5sum artifacts/teacher/model.pt | cut -c1-32 | sed 's/^/after_full=/'
ls -A artifacts/teacher | tr '\n' ' ' | sed 's/^/left=/'; echo
mount -o remount,size=64m artifacts/teacher
"$PY" -m stages.teacher --data artifacts/data/dataset/data.yaml --out artifacts/teacher/model.pt \
  --metrics artifacts/teacher/metrics.json --live artifacts/teacher/live --work artifacts/.resume/teacher \
  > freed.out 2> freed.err
echo "freed_rc=$?"
md5sum artifacts/teacher/model.pt | cut -c1-32 | sed 's/^/after_freed=/'
"""


def mount_namespace_available() -> str | None:
    if shutil.which("unshare") is None:
        return "no `unshare` on this machine"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"], capture_output=True,
                           text=True)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs in a private namespace: {probe.stderr.strip()}"


@pytest.mark.slow
def test_the_teacher_stage_on_a_full_disk_then_with_space_freed(tmp_path, tiny_chain):
    why = mount_namespace_available()
    if why:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI must run the full-disk test: {why}")
        pytest.skip(why)
    previous = tiny_chain / "artifacts/teacher/model.pt"
    work = tmp_path / "work"
    (work / "artifacts/teacher").mkdir(parents=True)
    shutil.copytree(tiny_chain / "artifacts/data", work / "artifacts/data")
    shutil.copy(tiny_chain / "params.yaml", work / "params.yaml")
    (work / "web").symlink_to(REPO / "web")
    assert stage_command("teacher")[2:] == ["stages.teacher", "--data", "artifacts/data/dataset/data.yaml", "--out",
                                            "artifacts/teacher/model.pt", "--metrics", "artifacts/teacher/metrics.json",
                                            "--live", "artifacts/teacher/live", "--work", "artifacts/.resume/teacher"]
    small = previous.stat().st_size + 96 * 1024  # the previous model fits; a second copy of it does not
    env = {**os.environ, "WORK": str(work), "PREVIOUS": str(previous), "SMALL": str(small), "PY": sys.executable,
           "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    proc = subprocess.run(["unshare", "-rm", "bash", "-c", NAMESPACE_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=900)
    got = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    err = (work / "full.err").read_text()
    want = hashlib.md5(previous.read_bytes()).hexdigest()
    assert got["full_rc"] != "0", err
    assert "artifacts/teacher/model.pt: could not be written (No space left on device); the previous version, if " \
           "any, is untouched; free some disk space and run the stage again" in err, err[-3000:]
    assert got["after_full"] == want  # the previous model, whole
    assert ".tmp" not in got["left"], got["left"]  # no temporary sibling left on the full disk
    assert got["freed_rc"] == "0", (work / "freed.err").read_text()[-3000:]
    assert got["after_freed"] == want  # the re-run writes the same bytes as the uninterrupted chain
