"""Portable CPU kernels, measured: which of the ops the training runs give other bits on other x86-64 CPUs, with and
without the pins of pipeline/common/kernels.py (`PORTABLE_ENV`: ATen at AVX2, oneDNN at AVX2, MKL's COMPATIBLE
branch), and what the pins cost in training speed on this CPU.

(a) Ops: every op in `OPS` (convolutions forward and backward, batch norm, activations, the loss's and the
distillation's math, matmuls, AdamW three ways, ...) runs on fixed seeded inputs in a child process (2 torch threads)
that hashes its output and gradients, once per configuration: unpinned (the `PORTABLE_ENV` keys removed) and pinned
(`PORTABLE_ENV` set), each on this CPU (twice: a control for run-to-run noise) and under `qemu-x86_64 -cpu EPYC-Rome`
(AMD vendor id, AVX2, no AVX-512) and `-cpu Haswell-v4` (Intel, AVX2). Each configuration is compared with this CPU in
the same pin state (largest difference in ulp, share of values that differ). Whether the training uses an op comes
from a trace: the ATen kernels one teacher and one distill training step of params.yaml call (TorchDispatchMode),
against the kernels each op's probe calls.

(b) Speed: training images/s of a short `Trainer` run (params.yaml's teacher section, 1 epoch, the variant swapped)
on a dataset made by the project's synthetic generator, pinned and unpinned, each run in a fresh child process, the
order alternated over the repeats; the CPU time other processes took meanwhile (from /proc/stat) is reported beside
each run.

    python -m bench.kernel_pins [--repeats 3] [--cpus native EPYC-Rome Haswell-v4] [--ops conv3x3 exp ...]
                                [--variants leafyolo_s leafyolo_u] [--n-train 512] [--params params.yaml]
                                [--out bench/results/kernel_pins.md]

`--repeats 0` skips the speed table; the emulated columns are skipped, with the reason stated, where qemu-x86_64 is
not installed (scripts/cpu_env.sh installs qemu-user). The children: `--probe` (hash the ops), `--trace DATA_YAML`
(the training's kernels), `--speed VARIANT DATA_YAML` (one training run); each prints one JSON line last.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stamp import REPO, cpu_model, stamp, write_report
from pipeline.common.kernels import PORTABLE_ENV

EMULATED = {"EPYC-Rome": "an AMD EPYC-Rome (AMD vendor id, AVX2, no AVX-512)",
            "Haswell-v4": "an Intel Haswell (AVX2, no AVX-512)"}
# variables that also steer the dispatchers: removed from every child's environment, so only PORTABLE_ENV differs
ISA_VARIABLES = (*PORTABLE_ENV, "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE")
X_SHAPE = (8, 16, 32, 32)  # the activations every elementwise probe runs on
CHILD_TIMEOUT = 3600  # seconds for one child (an emulated probe takes minutes)


# ----------------------------------------------------------------------------------------------------------- the ops
# name -> (ATen kernels the probe exercises, where the training calls it). The kernels (names as TorchDispatchMode
# sees them, a trailing in-place "_" dropped; convolutions with their kernel size, stride and grouping) are checked
# against each probe's own trace, and give the "used by training" column: all of them in the training steps' trace.
OPS: dict[str, tuple[tuple[str, ...], str]] = {
    "conv3x3": (("convolution 3x3/s1",), "dense 3x3 convolutions"),
    "conv3x3_s2": (("convolution 3x3/s2",), "the stem's stride-2 convolution"),
    "conv1x1": (("convolution 1x1/s1",), "pointwise convolutions, SE and attention gates, the head's outputs"),
    "dwconv": (("convolution 3x3/s1 depthwise",), "depthwise convolutions"),
    "dwconv_s2": (("convolution 3x3/s2 depthwise",), "the inverted residuals' stride-2 depthwise convolutions"),
    "bn_train": (("native_batch_norm",), "every ConvBNAct, in training mode"),
    "relu": (("relu",), "the activation (params.yaml act: relu), the head's box distances"),
    "hardswish": (("hardswish",), "the activation with act: hardswish"),
    "hardsigmoid": (("hardsigmoid",), "the squeeze-excite and attention gates"),
    "sigmoid": (("sigmoid",), "class scores in the loss, assigner and distillation"),
    "silu": (("silu",), "the activation with act: silu"),
    "exp": (("exp",), ""),
    "log": (("log",), "the distillation's class KL"),
    "tanh": (("tanh",), ""),
    "sqrt": (("sqrt",), "was CIoU's and power()'s square root; now portable_sqrt"),
    "portable_sqrt": (("rsqrt", "reciprocal"), "pipeline.train.iou: power(x, 0.5) in the assigner"),
    "atan": (("atan",), "was CIoU's aspect term; now atan2"),
    "atan2": (("atan2",), "CIoU's aspect term (pipeline.train.iou)"),
    "log_softmax": (("_log_softmax",), "the distillation's channel-wise feature KL"),
    "softmax": (("_softmax",), "the distillation's channel-wise feature KL"),
    "logsigmoid": (("log_sigmoid_forward",), "the distillation's class KL"),
    "bce_logits": (("binary_cross_entropy_with_logits",), "the classification loss"),
    "matmul": (("mm",), ""),
    "bmm": (("bmm",), ""),
    "linear": (("addmm",), ""),
    "mul_broadcast": (("mul",), "the SE and attention gates"),
    "avgpool": (("mean",), "the SE and attention gates' global pooling"),
    "mean": (("mean",), "reductions"),
    "sum": (("sum",), "reductions, the losses"),
    "pow2": (("pow",), "CIoU's squared distances"),
    "kl_div": (("xlogy",), "the distillation's channel-wise feature KL"),
    "upsample": (("upsample_nearest2d",), "the neck's 2x nearest upsampling"),
    "maxpool": (("max_pool2d_with_indices",), "SPPF's 5x5 max pools"),
    "adamw_default": (("lerp", "addcmul", "sqrt", "addcdiv"),
                      "torch.optim.AdamW's default on CPU (its for-loop; no longer the trainer's)"),
    "adamw_foreach": (("_foreach_lerp", "_foreach_addcmul", "_foreach_sqrt", "_foreach_addcdiv"),
                      "AdamW(foreach=True)"),
    "adamw_fused": (("_fused_adamw",), "the trainer's optimizer (AdamW(fused=True))"),
    "clip_grad_norm": (("_foreach_norm",), "the trainer's gradient clipping"),
    "ema_update": (("mul", "add"), "the EMA of the weights"),
}


def _op_cases() -> dict[str, Callable[[Callable[..., Any]], list[Any]]]:
    """name -> probe(t) returning the tensors to hash; `t(*shape, grad=True)` draws the op's own seeded inputs."""
    import torch
    import torch.nn.functional as F

    from pipeline.train.iou import portable_sqrt

    def grad(f: Callable[..., Any], *inputs: Any) -> list[Any]:
        """f(*inputs) and its gradients for a fixed seeded output gradient."""
        import numpy as np

        y = f(*inputs)
        g = torch.from_numpy(np.random.default_rng(1).standard_normal(tuple(y.shape)).astype(np.float32))
        return [y, *torch.autograd.grad(y, [i for i in inputs if i.requires_grad], g)]

    def unary(f: Callable[..., Any], positive: bool = False) -> Callable[[Callable[..., Any]], list[Any]]:
        return lambda t: grad((lambda x: f(x.abs() + 1)) if positive else f, t(*X_SHAPE))

    def adamw(**kw: Any) -> Callable[[Callable[..., Any]], list[Any]]:
        def probe(t: Callable[..., Any]) -> list[Any]:
            params = [torch.nn.Parameter(t(32, 16, 3, 3, grad=False)), torch.nn.Parameter(t(16, grad=False))]
            opt = torch.optim.AdamW(params, lr=0.01, weight_decay=5e-4, **kw)
            for _ in range(3):
                for q in params:
                    q.grad = t(*q.shape, grad=False)
                opt.step()
            return [q.detach() for q in params]
        return probe

    def clip(t: Callable[..., Any]) -> list[Any]:
        params = [torch.nn.Parameter(t(32, 16, 3, 3, grad=False)), torch.nn.Parameter(t(16, grad=False))]
        for q in params:
            q.grad = t(*q.shape, grad=False) * 3
        norm = torch.nn.utils.clip_grad_norm_(params, 10.0)
        return [norm, *(q.grad for q in params)]

    def ema(t: Callable[..., Any]) -> list[Any]:
        value, source = t(*X_SHAPE, grad=False), t(*X_SHAPE, grad=False)
        for d in (0.5, 0.9, 0.99):
            value.mul_(d).add_(source, alpha=1 - d)
        return [value]

    return {
        "conv3x3": lambda t: grad(lambda x, w: F.conv2d(x, w, padding=1), t(*X_SHAPE), t(32, 16, 3, 3)),
        "conv3x3_s2": lambda t: grad(lambda x, w: F.conv2d(x, w, stride=2, padding=1), t(*X_SHAPE), t(32, 16, 3, 3)),
        "conv1x1": lambda t: grad(lambda x, w: F.conv2d(x, w), t(*X_SHAPE), t(32, 16, 1, 1)),
        "dwconv": lambda t: grad(lambda x, w: F.conv2d(x, w, padding=1, groups=16), t(*X_SHAPE), t(16, 1, 3, 3)),
        "dwconv_s2": lambda t: grad(lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=16), t(*X_SHAPE),
                                    t(16, 1, 3, 3)),
        "bn_train": lambda t: grad(lambda x, a, b: F.batch_norm(x, None, None, a, b, training=True), t(*X_SHAPE),
                                   t(16), t(16)),
        "relu": unary(F.relu),
        "hardswish": unary(F.hardswish),
        "hardsigmoid": unary(F.hardsigmoid),
        "sigmoid": unary(torch.sigmoid),
        "silu": unary(F.silu),
        "exp": unary(torch.exp),
        "log": unary(torch.log, positive=True),
        "tanh": unary(torch.tanh),
        "sqrt": unary(torch.sqrt, positive=True),
        "portable_sqrt": unary(portable_sqrt, positive=True),
        "atan": unary(torch.atan),
        "atan2": lambda t: grad(torch.atan2, t(*X_SHAPE), t(*X_SHAPE)),
        "log_softmax": lambda t: grad(lambda x: F.log_softmax(x.reshape(128, -1) / 2, dim=1), t(*X_SHAPE)),
        "softmax": lambda t: grad(lambda x: F.softmax(x.reshape(128, -1) / 2, dim=1), t(*X_SHAPE)),
        "logsigmoid": unary(F.logsigmoid),
        "bce_logits": lambda t: grad(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="none"),
                                     t(*X_SHAPE), t(*X_SHAPE, grad=False).sigmoid()),
        "matmul": lambda t: grad(lambda a, b: a @ b, t(64, 96), t(96, 80)),
        "bmm": lambda t: grad(torch.bmm, t(4, 64, 96), t(4, 96, 80)),
        "linear": lambda t: grad(F.linear, t(64, 96), t(80, 96), t(80)),
        "mul_broadcast": lambda t: grad(lambda x, s: x * s, t(*X_SHAPE), t(8, 16, 1, 1)),
        "avgpool": unary(lambda x: F.adaptive_avg_pool2d(x, 1)),
        "mean": unary(lambda x: x.mean()),
        "sum": unary(lambda x: x.sum(dim=(0, 2, 3))),
        "pow2": unary(lambda x: x.pow(2)),
        "kl_div": lambda t: grad(lambda x, y: F.kl_div(F.log_softmax(x, dim=1), y, reduction="sum"), t(128, 64),
                                 F.softmax(t(128, 64, grad=False), dim=1)),
        "upsample": unary(lambda x: F.interpolate(x, scale_factor=2, mode="nearest")),
        "maxpool": unary(lambda x: F.max_pool2d(x, 5, 1, 2)),
        "adamw_default": adamw(),
        "adamw_foreach": adamw(foreach=True),
        "adamw_fused": adamw(fused=True),
        "clip_grad_norm": clip,
        "ema_update": ema,
    }


def _inputs(name: str) -> Callable[..., Any]:
    """The op's own input generator, seeded from its name: an op's inputs do not depend on which ops ran before."""
    import numpy as np
    import torch

    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little"))

    def t(*shape: int, grad: bool = True) -> Any:
        return torch.from_numpy(rng.standard_normal(shape).astype(np.float32)).requires_grad_(grad)
    return t


def _library_isas() -> dict[str, str]:
    """What oneDNN and MKL say they run (their verbose modes, on a small conv and a matmul): oneDNN's ISA and the
    convolution kernel it picked, MKL's code path and its conditional-numerical-reproducibility (CNR) branch."""
    import ctypes

    import torch
    import torch.nn.functional as F

    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as f:
        sys.stdout.flush()
        libc.fflush(None)
        saved = os.dup(1)
        os.dup2(f.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                F.conv2d(torch.ones(2, 8, 16, 16), torch.ones(8, 8, 3, 3), padding=1)  # small ones skip oneDNN
            with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                torch.ones(16, 16) @ torch.ones(16, 16)
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    isa = re.search(r"onednn_verbose.*?,isa:([^\n]+)", text)
    build = re.search(r"MKL_VERBOSE oneMKL[^\n]*? for Intel\(R\) 64 architecture (.*?)(?:, Lnx|\n)", text)
    conv = re.search(r"primitive,exec,cpu,convolution,([^,]+),", text)
    cnr = re.search(r"CNR:(\w+)", text)
    return {"onednn_isa": isa.group(1).strip() if isa else "not reported",
            "onednn_conv": conv.group(1) if conv else "not reported",
            "mkl_isa": build.group(1).replace("(R)", "").strip() if build else "not reported",
            "mkl_cnr": cnr.group(1) if cnr else "not reported"}


def probe(ops: list[str], dump: Path | None) -> dict[str, Any]:
    """Child: each op's output and gradients hashed (and saved to `dump`/<op>.npz when given)."""
    import numpy as np
    import torch

    from pipeline.common.seeding import warm_up_math_kernels

    libraries = _library_isas()  # first: oneDNN names its ISA only when verbose is on at its first use
    torch.set_num_threads(2)
    warm_up_math_kernels()  # as every training run does (seed_everything): MKL's first call per thread can be inexact
    cases = _op_cases()
    hashes, seconds = {}, {}
    for name in ops:
        t0 = time.perf_counter()
        tensors = [x.detach().contiguous().numpy() for x in cases[name](_inputs(name))]
        seconds[name] = time.perf_counter() - t0
        h = hashlib.sha256()
        for x in tensors:
            h.update(x.tobytes())
        hashes[name] = h.hexdigest()[:16]
        if dump is not None:
            np.savez(dump / f"{name}.npz", *tensors)
    return {"hashes": hashes, "seconds": seconds, "capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "env": {k: os.environ.get(k) for k in PORTABLE_ENV}, **libraries}


# --------------------------------------------------------------------------------------- kernel traces (training)
def _recorder():
    """A TorchDispatchMode that collects kernel names (see OPS)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Recorder(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.kernels: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not _in_warm_up():
                self.kernels.add(kernel_name(func, args))
            return func(*args, **(kwargs or {}))

    return Recorder()


def _in_warm_up() -> bool:
    """Whether seeding's throw-away warm-up call (pipeline.common.seeding.warm_up_math_kernels) is running: its
    `exp` computes nothing the training uses."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "warm_up_math_kernels":
            return True
        frame = frame.f_back
    return False


def kernel_name(func: Any, args: Any) -> str:
    """The name OPS uses for an ATen call: its op name, a trailing in-place "_" dropped; a convolution with its
    kernel size, stride and grouping."""
    name = func.overloadpacket.__name__
    name = name[:-1] if name.endswith("_") else name
    if name == "convolution":
        x, w, stride, groups = args[0], args[1], args[3], args[8]
        kind = " depthwise" if groups > 1 and groups == x.shape[1] else f" groups={groups}" if groups > 1 else ""
        name = f"convolution {w.shape[2]}x{w.shape[3]}/s{stride[0]}{kind}"
    return name


def trace(data_yaml: Path, params: Path, ops: list[str]) -> dict[str, Any]:
    """Child: the kernels of one teacher and one distill training step (params.yaml's sections, 4 images; the distill
    step alone where params.yaml trains no teacher) and of each op's probe."""
    import dataclasses

    import torch
    from torch.utils.data import Subset

    from pipeline.config.params import load_section
    from pipeline.config.stages import DistillParams, TeacherParams
    from pipeline.data.data_yaml import load_data_yaml
    from pipeline.data.dataset import YoloDataset
    from pipeline.model.leafyolo import LeafYOLO
    from pipeline.train.distill import DistillWeights
    from pipeline.train.trainer import Trainer

    torch.set_num_threads(2)
    teacher_p = load_section(params, "teacher", TeacherParams)
    distill_p = load_section(params, "distill", DistillParams)
    data = load_data_yaml(data_yaml)
    training: set[str] = set()
    with tempfile.TemporaryDirectory() as work:
        # the teacher section trains nothing with teacher.variant 'none'; the distill step then trains alone
        sections = (distill_p,) if teacher_p.none else (teacher_p, distill_p)
        for section in sections:
            p = dataclasses.replace(section.train, epochs=1, min_steps=0, batch_size=4)
            images = Subset(YoloDataset(data.train, data.nc, p.imgsz, augment=p.augment, names=data.names, seed=0),
                            range(4))
            model = LeafYOLO(section.variant, data.nc, act=section.act, seed=p.seed)
            extra: dict[str, Any] = {}
            if isinstance(section, DistillParams) and not teacher_p.none and section.alpha > 0:
                extra = {"teacher": LeafYOLO(teacher_p.variant, data.nc, act=teacher_p.act, seed=p.seed),
                         "distill": DistillWeights(section.alpha, section.temperature, section.cls_weight,
                                                   section.feat_weight)}
            trainer = Trainer(model, images, p, data.names, Path(work) / section.variant, progress=False, **extra)
            with _recorder() as rec:
                trainer.fit()
            training |= rec.kernels
    cases, probes = _op_cases(), {}
    for name in ops:
        with _recorder() as rec:
            cases[name](_inputs(name))
        probes[name] = sorted(rec.kernels)
    return {"training": sorted(training), "probes": probes}


# ----------------------------------------------------------------------------------------------- speed (training)
def speed(variant: str, data_yaml: Path, params: Path) -> dict[str, Any]:
    """Child: one epoch of params.yaml's teacher training with `variant`; the trainer's images/s."""
    import dataclasses

    import torch

    from pipeline.config.params import load_section
    from pipeline.config.stages import TeacherParams
    from pipeline.data.data_yaml import load_data_yaml
    from pipeline.data.dataset import YoloDataset
    from pipeline.model.leafyolo import LeafYOLO
    from pipeline.train.trainer import Trainer

    section = load_section(params, "teacher", TeacherParams)
    p = dataclasses.replace(section.train, epochs=1, min_steps=0)
    data = load_data_yaml(data_yaml)
    train = YoloDataset(data.train, data.nc, p.imgsz, augment=p.augment, names=data.names, seed=p.seed)
    model = LeafYOLO(variant, data.nc, act=section.act, seed=p.seed)
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        result = Trainer(model, train, p, data.names, work, progress=False).fit()
    return {"variant": variant, "images_per_second": result.images_per_second, "images": len(train),
            "batch_size": p.batch_size, "imgsz": p.imgsz, "fit_seconds": time.perf_counter() - t0,
            "capability": torch.backends.cpu.get_cpu_capability(), "threads": result.threads}


# ------------------------------------------------------------------------------------------------------- the parent
def cpu_features() -> str:
    """The vector extensions /proc/cpuinfo lists that the dispatchers choose between."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return "flags unknown"
    have = set(flags.split(":", 1)[1].split())
    return ", ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in have) or "no AVX2"


def qemu_version(qemu: str | None) -> str:
    if not qemu:
        return "not installed"
    proc = subprocess.run([qemu, "--version"], capture_output=True, text=True)
    first = proc.stdout.splitlines()[0] if proc.stdout else ""
    return first.replace("qemu-x86_64 version", "qemu-x86_64").split("(")[0].strip() or qemu


def child_env(pinned: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ISA_VARIABLES}
    env.update({"PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"})
    return {**env, **PORTABLE_ENV} if pinned else env


def _busy_seconds() -> float:
    """CPU seconds all processes on this machine have used since boot (/proc/stat; 0 where it is missing)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def run_child(args: list[str], pinned: bool, prefix: tuple[str, ...] = ()) -> tuple[dict[str, Any], dict[str, float]]:
    """`python -m bench.kernel_pins <args>` in a fresh process (under `prefix`, e.g. qemu); its JSON line, and the
    wall time and the CPU cores other processes used meanwhile."""
    busy0, own0, t0 = _busy_seconds(), _own_seconds(), time.perf_counter()
    proc = subprocess.run([*prefix, sys.executable, "-m", "bench.kernel_pins", *args], cwd=REPO, env=child_env(pinned),
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    wall = time.perf_counter() - t0
    others = max(0.0, (_busy_seconds() - busy0) - (_own_seconds() - own0)) / wall
    if proc.returncode:
        raise RuntimeError(f"{' '.join([*prefix, 'python -m bench.kernel_pins', *args])} failed "
                           f"(status {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), {"seconds": wall, "other_cores": others}


def differences(a: Any, b: Any) -> dict[str, float]:
    """How two float32 arrays of the same shape differ: the largest difference in ulp, the share of values that
    differ, and the largest absolute difference relative to the largest |value| of `a` (ulp alone overstates
    differences near zero, such as gradients that are differences of near-equal terms)."""
    import numpy as np

    def ordered(x: Any) -> Any:
        i = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)

    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if not a.size:
        return {"max_ulp": 0, "share": 0.0, "max_rel": 0.0}
    d = np.abs(ordered(a) - ordered(b))
    scale = float(np.abs(a).max()) or 1.0
    return {"max_ulp": int(d.max()), "share": float((d > 0).mean()),
            "max_rel": float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) / scale}


def compare_dumps(ref: Path, other: Path, ops: list[str]) -> dict[str, dict[str, Any]]:
    """Per op, over all its tensors: the largest ulp and relative differences and the share of values that differ."""
    import numpy as np

    out = {}
    for name in ops:
        with np.load(ref / f"{name}.npz") as a, np.load(other / f"{name}.npz") as b:
            pairs = [(a[k], b[k]) for k in a.files]
        diffs = [differences(x, y) for x, y in pairs]
        size = sum(x.size for x, _ in pairs)
        out[name] = {"max_ulp": max(d["max_ulp"] for d in diffs), "max_rel": max(d["max_rel"] for d in diffs),
                     "share": sum(d["share"] * x.size for d, (x, _) in zip(diffs, pairs)) / max(1, size)}
    return out


def _folder(key: str) -> str:
    return re.sub(r"\W+", "_", key)


def config_name(cpu: str, pinned: bool) -> str:
    return f"{'pinned' if pinned else 'unpinned'}, {cpu}"


def run_ops(ops: list[str], cpus: list[str], qemu: str | None, work: Path) -> dict[str, Any]:
    """Every configuration's probe; each compared with this CPU's run in the same pin state."""
    runs, comparisons = {}, {}
    plan = [(cpu, pinned, again) for pinned in (False, True) for cpu, again in
            [("native", False), ("native", True)] + [(c, False) for c in cpus if c != "native"]]
    for k, (cpu, pinned, again) in enumerate(plan, 1):
        key = config_name(cpu + (" again" if again else ""), pinned)
        dump = work / _folder(key)
        dump.mkdir()
        prefix = () if cpu == "native" else (qemu, "-cpu", cpu)
        print(f"[kernel_pins ops {k}/{len(plan)}] {key}", flush=True)
        got, timing = run_child(["--probe", "--ops", *ops, "--dump", str(dump)], pinned, prefix)
        runs[key] = {**got, **timing, "cpu": cpu, "pinned": pinned}
        ref = work / _folder(config_name("native", pinned))
        if cpu != "native" or again:
            comparisons[key] = compare_dumps(ref, dump, ops)
            shutil.rmtree(dump)
    native = [work / _folder(config_name("native", p)) for p in (False, True)]
    comparisons["pinned vs unpinned, native"] = compare_dumps(native[0], native[1], ops)
    return {"runs": runs, "comparisons": comparisons}


def run_speed(variants: list[str], repeats: int, data_yaml: Path, params: Path) -> list[dict[str, Any]]:
    """Each (repeat, variant): an unpinned and a pinned run, in fresh processes, the order alternated by repeat."""
    rows = []
    for r in range(repeats):
        order = (False, True) if r % 2 == 0 else (True, False)
        for variant in variants:
            row: dict[str, Any] = {"repeat": r + 1, "variant": variant,
                                   "order": " then ".join("pinned" if p else "unpinned" for p in order)}
            for pinned in order:
                which = "pinned" if pinned else "unpinned"
                print(f"[kernel_pins speed {r + 1}/{repeats}] {variant} {which}", flush=True)
                got, timing = run_child(["--speed", variant, str(data_yaml), "--params", str(params)], pinned)
                row[which] = {**got, **timing}
            row["ratio"] = row["pinned"]["images_per_second"] / row["unpinned"]["images_per_second"]
            rows.append(row)
    return rows


def make_dataset(params: Path, n_train: int, out: Path) -> Path:
    """The project's synthetic generator with params.yaml's data settings, `n_train` training images."""
    from pipeline.config.params import load_section
    from pipeline.config.stages import DataParams
    from pipeline.data.synthetic import generate_dataset

    d = load_section(params, "data", DataParams)
    return generate_dataset(out, n_train=n_train, n_val=1, imgsz=d.imgsz, seed=d.seed, min_size=d.min_object_px,
                            max_size=d.max_object_px, max_clutter=d.max_clutter, max_objects=d.max_objects)


# ------------------------------------------------------------------------------------------------------- the report
def _cell(c: dict[str, Any]) -> str:
    return "=" if c["max_ulp"] == 0 else f"≠ {100 * c['share']:.2g} %, {c['max_rel']:.0e}"


def ops_lines(ops: list[str], result: dict[str, Any], used: dict[str, bool], skipped: str) -> list[str]:
    runs, comps = result["runs"], result["comparisons"]
    columns = [k for k in comps if k != "pinned vs unpinned, native"] + ["pinned vs unpinned, native"]
    lines = ["## Which ops give other bits", "",
             "Each op's output and gradients on fixed seeded inputs (after the seeding's warm-up call, as in "
             "training), 2 torch threads, compared with this CPU in the same pin state (\"pinned vs unpinned, native\": "
             "the pins' own effect here; \"native again\": a second run, the control for run-to-run noise). `=`: the "
             "same bits; `≠ S %, R`: S % of the values differ, the largest by R times the tensor's largest magnitude "
             "(the JSON file has the largest difference in ulp too). Unpinned: the `PORTABLE_ENV` variables removed; "
             "pinned: " + ", ".join(f"`{k}={v}`" for k, v in PORTABLE_ENV.items()) + ". Used by training: every "
             "kernel of the op is among those one teacher and one distill training step of params.yaml call (traced "
             "by TorchDispatchMode; the seeding's throw-away `exp` warm-up call not counted); where: where the "
             "training calls it, or used to.", ""]
    if skipped:
        lines += [f"Emulated CPUs skipped: {skipped}.", ""]
    lines += ["What each configuration ran (torch's ATen dispatch; oneDNN's and MKL's verbose modes, on a small "
              "convolution and matmul):", "",
              "| configuration | ATen capability | oneDNN ISA | oneDNN conv kernel | MKL code path | MKL CNR branch | "
              "seconds |", "|---|---|---|---|---|---|---:|"]
    for key, r in runs.items():
        lines.append(f"| {key} | {r['capability']} | {r['onednn_isa']} | {r['onednn_conv']} | {r['mkl_isa']} | "
                     f"{r['mkl_cnr']} | {r['seconds']:.0f} |")
    lines += ["", "| op | kernels | used by training | where | " + " | ".join(columns) + " |",
              "|---|---|---|---|" + "---|" * len(columns)]
    for name in ops:
        kernels, where = OPS[name]
        lines.append(f"| {name} | {', '.join(f'`{k}`' for k in kernels)} | {'yes' if used[name] else 'no'} | {where} | "
                     + " | ".join(_cell(comps[c][name]) for c in columns) + " |")
    lines += ["", "Ops whose bits differ from this CPU's, per configuration:", ""]
    for c in columns:
        differ = [n for n in ops if comps[c][n]["max_ulp"]]
        in_training = [n for n in differ if used[n]]
        lines.append(f"- {c}: {', '.join(differ) if differ else 'none'}"
                     + (f" (used by training: {', '.join(in_training) if in_training else 'none'})" if differ else ""))
    return lines


def speed_lines(rows: list[dict[str, Any]], variants: list[str], n_train: int) -> list[str]:
    first = rows[0]["pinned"]
    lines = ["## What the pins cost in training speed", "",
             f"Training images/s (the trainer's own figure) of one epoch of params.yaml's teacher training ("
             f"batch {first['batch_size']}, {first['imgsz']} px, {first['threads']} torch threads) with the variant "
             f"swapped, on {n_train} generated images (pipeline/data/synthetic.py, params.yaml's data settings), "
             f"each run a fresh process on {cpu_model()} ({cpu_features()}); the order alternates by repeat. Other "
             "load: the CPU cores other processes on the machine used during the unpinned / pinned run, on average "
             "(from /proc/stat).", "",
             "| variant | repeat | order | unpinned img/s | pinned img/s | pinned / unpinned | other load (cores) |",
             "|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        load = f"{r['unpinned']['other_cores']:.2f} / {r['pinned']['other_cores']:.2f}"
        lines.append(f"| {r['variant']} | {r['repeat']} | {r['order']} | {r['unpinned']['images_per_second']:.1f} | "
                     f"{r['pinned']['images_per_second']:.1f} | {r['ratio']:.3f} | {load} |")
    lines.append("")
    for v in variants:
        ratios = [r["ratio"] for r in rows if r["variant"] == v]
        spread = f", sample std {statistics.stdev(ratios):.3f}" if len(ratios) > 1 else ""
        mean = statistics.mean(ratios)
        effect = (f"the pins cost {100 * (1 - mean):.1f} % of training images/s here" if mean <= 1 else
                  f"pinned ran {100 * (mean - 1):.1f} % faster here")
        lines.append(f"- {v}: pinned / unpinned = {mean:.3f} on average over {len(ratios)} repeat(s) (range "
                     f"{min(ratios):.3f} to {max(ratios):.3f}{spread}): {effect}.")
    busiest = max(max(r["unpinned"]["other_cores"], r["pinned"]["other_cores"]) for r in rows)
    if busiest > 0.25:
        lines += ["", f"**Other work ran beside these runs** (up to {busiest:.2f} cores in use by other processes): "
                  "the ratios are noisier than on an idle machine."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=list(OPS))
    parser.add_argument("--cpus", nargs="+", default=["native", *EMULATED], choices=["native", *EMULATED])
    parser.add_argument("--variants", nargs="+", default=["leafyolo_s", "leafyolo_u"])
    parser.add_argument("--repeats", type=int, default=3, help="speed repeats (0: no speed table)")
    parser.add_argument("--n-train", type=int, default=512, help="generated training images of a speed run")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--out", default="bench/results/kernel_pins.md")
    child = parser.add_mutually_exclusive_group()
    child.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    child.add_argument("--trace", type=Path, metavar="DATA_YAML", help=argparse.SUPPRESS)
    child.add_argument("--speed", nargs=2, metavar=("VARIANT", "DATA_YAML"), help=argparse.SUPPRESS)
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.ops, args.dump)))
        return
    if args.trace:
        print(json.dumps(trace(args.trace, args.params, args.ops)))
        return
    if args.speed:
        print(json.dumps(speed(args.speed[0], Path(args.speed[1]), args.params)))
        return

    header = stamp()
    t_start = time.time()
    qemu = shutil.which("qemu-x86_64")
    cpus = args.cpus
    skipped = ""
    if not qemu and any(c != "native" for c in cpus):
        skipped = (f"qemu-x86_64 is not installed (scripts/cpu_env.sh installs qemu-user), so "
                   f"{', '.join(c for c in cpus if c != 'native')} did not run")
        cpus = ["native"]
    with tempfile.TemporaryDirectory(prefix="kernel_pins_") as tmp:
        work = Path(tmp)
        print(f"[kernel_pins] generating {args.n_train} training images", flush=True)
        data_yaml = make_dataset(args.params, args.n_train, work / "data")
        print("[kernel_pins] tracing the training's kernels", flush=True)
        traced, _ = run_child(["--trace", str(data_yaml), "--params", str(args.params), "--ops", *args.ops], True)
        wrong = {n: sorted(set(OPS[n][0]) - set(traced["probes"][n])) for n in args.ops}
        wrong = {n: k for n, k in wrong.items() if k}
        if wrong:
            raise RuntimeError(f"OPS names kernels its probes do not call: {wrong} (they call {traced['probes']})")
        used = {n: set(OPS[n][0]) <= set(traced["training"]) for n in args.ops}
        ops_result = run_ops(args.ops, cpus, qemu, work)
        speed_rows = run_speed(args.variants, args.repeats, data_yaml, args.params) if args.repeats > 0 else []
    minutes = (time.time() - t_start) / 60
    lines = ["# Portable CPU kernels: the bits they fix and what they cost", "", header, "",
             f"The pins of `pipeline/common/kernels.py` (set by `stages/__init__.py` before torch loads), measured "
             f"on {cpu_model()} ({cpu_features()}, {os.cpu_count()} cores)"
             + (f" and, emulated by {qemu_version(qemu)}, on " + " and ".join(EMULATED[c] for c in cpus if c in EMULATED)
                if len(cpus) > 1 else "") + f"; {minutes:.0f} min in all.", ""]
    lines += ops_lines(args.ops, ops_result, used, skipped)
    lines += [""] + (speed_lines(speed_rows, args.variants, args.n_train) if speed_rows else
                     ["## What the pins cost in training speed", "", "Not measured (`--repeats 0`)."])
    rows = {"cpu": cpu_model(), "cpu_features": cpu_features(), "portable_env": PORTABLE_ENV, "skipped": skipped,
            "qemu": qemu_version(qemu) if len(cpus) > 1 else None, "ops": {
        n: {"kernels": list(OPS[n][0]), "where": OPS[n][1], "used_by_training": used[n],
            "probe_kernels": traced["probes"][n]} for n in args.ops},
        "training_kernels": traced["training"], **ops_result, "speed": speed_rows}
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
