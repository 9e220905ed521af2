"""Run fuzz cases (tests/fuzz_cases.py) in a worker process, so a native crash (a malformed model file handed to a C++
runtime) or a hang is reported as an unexplained outcome instead of taking the test run down with it; and drive one
kind's hypothesis strategy through it (`run_kind`), for the test (tests/test_fuzz.py) and the report (bench/fuzz.py).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import warnings
from collections import Counter
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz_cases import EXAMPLES, STRATEGIES
from tests.fuzz_checks import Outcome

CASE_TIMEOUT = 10.0  # seconds one case may take in the worker before it counts as a hang
START_TIMEOUT = 300.0


def _serve(conn, root: str) -> None:
    """The worker: build the seeds, then run each case it receives and send back its Outcome."""
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # the native runtimes print to fd 1 and 2; the cases capture what Python prints
    os.dup2(quiet, 2)
    warnings.simplefilter("ignore")
    os.environ["TQDM_DISABLE"] = "1"
    import torch

    from tests.fuzz_checks import Context, run_case

    torch.set_num_threads(1)
    ctx = Context(Path(root))
    conn.send("ready")
    while True:
        case = conn.recv()
        if case is None:
            return
        conn.send(run_case(ctx, case))


class Worker:
    """One worker process at a time, restarted after a crash or a hang."""

    def __init__(self, root: Path, case_timeout: float = CASE_TIMEOUT) -> None:
        self.root, self.case_timeout, self.starts, self.proc = Path(root), case_timeout, 0, None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.starts += 1
        self.proc = ctx.Process(target=_serve, args=(child, str(self.root / f"worker{self.starts}")), daemon=True)
        self.proc.start()
        child.close()
        if not self.conn.poll(START_TIMEOUT) or self.conn.recv() != "ready":
            raise RuntimeError(f"fuzz worker did not start within {START_TIMEOUT:.0f} s (exit code {self.proc.exitcode})")

    def _stop(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.join(10)
        self.proc = None

    def run(self, case: dict) -> Outcome:
        if self.proc is None:
            self._start()
        self.conn.send(case)
        if not self.conn.poll(self.case_timeout):
            self._stop()
            return Outcome("unexplained", f"hang: no outcome within {self.case_timeout:g} s")
        try:
            return self.conn.recv()
        except EOFError:
            self.proc.join(10)
            code = self.proc.exitcode
            self.proc = None
            why = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit code {code}"
            return Outcome("unexplained", f"crash: the worker process died ({why})")

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(10)
        self._stop()


def run_kind(kind: str, worker: Worker, max_examples: int | None = None,
             strict: bool = True) -> tuple[Counter, list[tuple[dict, str]], float]:
    """Draw `max_examples` cases of `kind` (EXAMPLES[kind] by default; derandomized, so every run draws the same ones)
    and run each in `worker`. Returns (outcomes by category, the unexplained (case, detail) pairs, seconds). With
    `strict`, the first unexplained outcome fails the hypothesis test, which then shrinks it to a minimal case."""
    counts: Counter = Counter()
    bad: list[tuple[dict, str]] = []

    @settings(max_examples=max_examples or EXAMPLES[kind], derandomize=True, database=None,
              deadline=timedelta(seconds=CASE_TIMEOUT + START_TIMEOUT), print_blob=False,
              phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if strict else [])],
              suppress_health_check=list(HealthCheck))
    @given(STRATEGIES[kind])
    def check(case: dict) -> None:
        outcome = worker.run(case)
        counts[outcome.category] += 1
        if outcome.category == "unexplained":
            bad.append((case, outcome.detail))
            assert not strict, f"{kind} case ended unexplained: {outcome.detail}"

    t0 = time.perf_counter()
    check()
    return counts, bad, time.perf_counter() - t0
