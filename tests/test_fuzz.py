"""Fuzzed input (issue 27 item 3): every mutated image, label file, data.yaml, COCO json, params section and model file
ends in a clear error naming the file or key, a counted skip (`data.on_error: skip`) or a valid result, within
CASE_TIMEOUT seconds, in a worker process that a native crash cannot take the test run down with (the cases:
tests/fuzz_cases.py; how each is run and judged: tests/fuzz_checks.py). `python -m bench.fuzz` reports the same cases.
"""

from __future__ import annotations

import pytest

from tests.fuzz_cases import EXAMPLES
from tests.fuzz_runner import Worker, run_kind

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = Worker(tmp_path_factory.mktemp("fuzz"))
    yield w
    w.close()


def test_a_run_tries_at_least_a_thousand_cases():
    assert sum(EXAMPLES.values()) >= 1000 and min(EXAMPLES.values()) >= 100


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_fuzzed_input_ends_in_a_clear_error_a_counted_skip_or_a_valid_result(kind, worker):
    counts, bad, _ = run_kind(kind, worker)
    assert not bad  # run_kind fails first, with hypothesis' shrunk example; this is a backstop
    assert sum(counts.values()) == EXAMPLES[kind], counts
    assert counts["error"] > 0  # the mutations do break the input (the checks are not vacuous)
    if kind in ("image", "label"):
        assert counts["skip"] > 0 and counts["valid"] > 0


def test_a_crash_or_a_hang_in_the_worker_is_reported_not_fatal(tmp_path):
    """The runner's own guard: a case that kills the worker natively or never ends is an unexplained outcome."""
    w = Worker(tmp_path, case_timeout=3)
    try:
        crash = w.run({"kind": "_crash"})
        hang = w.run({"kind": "_hang"})
        after = w.run({"kind": "label", "lines": [["0", "0.5", "0.5", "0.2", "0.2"]], "sep": " ", "newline": "\n",
                       "bom": True, "trailing_newline": True, "encoding": "utf-8", "entry": "parse", "on_error": "raise"})
    finally:
        w.close()
    assert crash.category == "unexplained" and "SIGSEGV" in crash.detail
    assert hang.category == "unexplained" and "hang" in hang.detail
    assert after.category == "valid"  # the worker was restarted
