"""Portable CPU kernels (pipeline/common/kernels.py): every stage runs pinned, the pins refuse to be set too late,
the ATen replacements for MKL's sqrt and atan agree with them, and a training stage writes the same bytes on an
emulated AMD EPYC as on this CPU."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

from pipeline.common.kernels import PORTABLE_ENV, pin_portable_kernels
from pipeline.train.iou import box_ciou, portable_sqrt
from tests.stage_runner import REPO, run_stage
from tests.test_reproducibility import without_timings

EMULATED_CPU = "EPYC-Rome"  # AMD vendor id, AVX2 and no AVX-512: the CPU class where the kernels differed unpinned


def test_every_stage_module_runs_with_the_portable_kernels():
    """`python -m stages.<name>` imports stages/__init__.py first: torch then runs AVX2 kernels even on an AVX-512
    CPU, whatever the caller's environment said."""
    code = ("import stages.teacher, os, json, torch; "
            "print(json.dumps({'cap': torch.backends.cpu.get_cpu_capability(), "
            f"'env': {{k: os.environ.get(k) for k in {sorted(PORTABLE_ENV)!r}}}}}))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=REPO)
    got = json.loads(out.stdout)
    assert got["env"] == PORTABLE_ENV
    assert got["cap"] == "AVX2"


def test_pinning_after_torch_is_imported_is_refused(monkeypatch):
    """torch reads the variables when it loads: setting them later would silently change nothing."""
    assert "torch" in sys.modules
    for key in PORTABLE_ENV:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match="before torch is imported"):
        pin_portable_kernels()
    for key, value in PORTABLE_ENV.items():  # already pinned: nothing to change, nothing to refuse
        monkeypatch.setenv(key, value)
    pin_portable_kernels()
    scratch: dict[str, str] = {}
    pin_portable_kernels(scratch)  # a child's environment can always be pinned
    assert scratch == PORTABLE_ENV


def test_portable_sqrt_is_sqrt_within_two_ulp():
    x = torch.cat([torch.tensor([0.0, 1.0, 4.0, 2.0, 1e-30, 3.4e38]), torch.rand(100_000) * 10])
    got, ref = portable_sqrt(x), x.double().sqrt()
    assert got[0] == 0 and got[1] == 1 and got[2] == 2
    ulp = torch.nextafter(ref.float(), torch.tensor(math.inf)) - ref.float()
    assert ((got.double() - ref).abs() <= 2 * ulp.double()).all()


def textbook_ciou(a: list[float], b: list[float]) -> float:
    """CIoU of two xyxy boxes as Zheng et al. (2020) write it, with atan(w / h), in plain Python floats."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    wa, ha, wb, hb = a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1]
    iou = iw * ih / (wa * ha + wb * hb - iw * ih)
    c2 = (max(a[2], b[2]) - min(a[0], b[0])) ** 2 + (max(a[3], b[3]) - min(a[1], b[1])) ** 2
    rho2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    v = 4 / math.pi**2 * (math.atan(wb / hb) - math.atan(wa / ha)) ** 2
    alpha = v / (1 - iou + v)
    return iou - rho2 / c2 - alpha * v


def test_ciou_with_atan2_is_the_papers_ciou():
    """atan2(w, h) = atan(w / h) for w, h > 0: the loss's CIoU is the paper's."""
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(500, 2, generator=g) * 100
    a = torch.cat([xy, xy + 1 + torch.rand(500, 2, generator=g) * 50], 1).double()
    b = a + torch.randn(500, 4, generator=g).double() * 5
    b[:, 2:] = torch.maximum(b[:, 2:], b[:, :2] + 0.5)
    got = box_ciou(a, b, eps=0.0)
    want = torch.tensor([textbook_ciou(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)], dtype=torch.float64)
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    assert got.min() < 0 < got.max()  # overlapping and disjoint pairs both covered


def qemu_or_skip() -> str:
    qemu = shutil.which("qemu-x86_64")
    if qemu:
        return qemu
    why = "qemu-x86_64 is not installed (scripts/cpu_env.sh installs qemu-user as root)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"CI must run the cross-CPU test: {why}")
    pytest.skip(why)


@pytest.mark.slow
def test_training_stages_write_the_same_bytes_on_an_emulated_amd_epyc(tiny_chain, tmp_path):
    """The teacher and distill stages of the tiny chain, run again under `qemu-x86_64 -cpu EPYC-Rome` (an AMD
    vendor id, AVX2, no AVX-512: MKL and oneDNN take their non-Intel, narrower paths there), give the same
    checkpoints byte for byte and the same metrics apart from timings. Unpinned, the teacher differed already."""
    qemu = qemu_or_skip()
    work = tmp_path / "emulated"
    work.mkdir()
    shutil.copy(tiny_chain / "params.yaml", work / "params.yaml")
    shutil.copytree(tiny_chain / "artifacts/data", work / "artifacts/data")
    for stage in ("teacher", "distill"):
        proc = run_stage(stage, work, timeout=1200, prefix=(qemu, "-cpu", EMULATED_CPU))
        assert proc.returncode == 0, f"{stage} under qemu failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        native, emulated = tiny_chain / "artifacts" / stage, work / "artifacts" / stage
        assert (emulated / "model.pt").read_bytes() == (native / "model.pt").read_bytes(), stage
        assert (without_timings(json.loads((emulated / "metrics.json").read_text()))
                == without_timings(json.loads((native / "metrics.json").read_text()))), stage


@pytest.mark.slow
def test_the_onnx_export_writes_the_same_bytes_on_an_emulated_amd_epyc(tiny_chain, tmp_path):
    """The onnx stage of the tiny chain under the emulated EPYC writes the same FP32 and FP16 files as the native
    run. The TorchScript exporter's own Conv+BN folding takes `torch.sqrt` (MKL's vector math): its fused weights
    were up to 1 ulp apart between a real and an emulated EPYC; export_onnx folds with ATen's rsqrt first."""
    qemu = qemu_or_skip()
    work = tmp_path / "emulated"
    work.mkdir()
    shutil.copy(tiny_chain / "params.yaml", work / "params.yaml")
    for stage in ("data", "finetune"):
        shutil.copytree(tiny_chain / "artifacts" / stage, work / "artifacts" / stage)
    proc = run_stage("onnx", work, timeout=1200, prefix=(qemu, "-cpu", EMULATED_CPU))
    assert proc.returncode == 0, f"onnx under qemu failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    for name in ("model_fp32.onnx", "model_fp16.onnx"):
        assert (work / "artifacts/onnx" / name).read_bytes() == (tiny_chain / "artifacts/onnx" / name).read_bytes(), name
