"""Single-thread CPU latency of one backend call on one image (median over repeated runs, warm-up excluded)."""

from __future__ import annotations

import time

import numpy as np
import torch

from pipeline.common.seeding import warm_up_math_kernels


def measure_latency(backend, imgsz: int, runs: int = 30, warmup: int = 5, seed: int = 0) -> dict[str, float]:
    x = np.random.default_rng(seed).random((1, 3, imgsz, imgsz), dtype=np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the torch backend; onnxruntime and LiteRT backends are built single-threaded
    try:
        for _ in range(warmup):
            backend(x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            backend(x)
            times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        torch.set_num_threads(threads)
        warm_up_math_kernels()  # threads the runtime may have started anew
    return {"latency_ms_median": float(np.median(times)), "latency_ms_p90": float(np.percentile(times, 90))}
