"""Fuzzed input: how every mutated image, YOLO label file, data.yaml, COCO json, params.yaml section and model file
(.pt / .onnx / .tflite, through `LEAFYOLO(path)` and `leafyolo predict|val|info|export`) ends, counted by kind: a clear
error naming the file or key, a counted skip (`data.on_error: skip`), a valid result, or unexplained (a library's
exception leaking out, a message naming nothing, a wrong result accepted, a hang past the per-case bound or a crash
of the worker process). The cases are the fuzz test's own (tests/fuzz_cases.py, hypothesis, derandomized: every run
draws the same ones), run and judged by the same code (tests/fuzz_checks.py, tests/fuzz_runner.py).

    python -m bench.fuzz [--scale 1.0] [--kinds image label ...] [--out bench/results/fuzz.md]

Exits with status 1 when any case ends unexplained (the report lists them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.stamp import stamp, write_report
from tests.fuzz_cases import EXAMPLES
from tests.fuzz_checks import CATEGORIES
from tests.fuzz_runner import CASE_TIMEOUT, Worker, run_kind

WHAT = {
    "image": "PNG/JPEG/BMP/WebP/TIFF in every mode (CMYK, 16-bit, palette, grayscale, ...), EXIF orientations, "
             "decompression-bomb headers; truncated, bytes flipped, replaced by text / random bytes / nothing, wrong "
             "suffix; through the dataset index, YoloDataset and predict",
    "label": "bad numbers, NaN/inf, extra or missing columns, negative sizes, out-of-[0, 1] boxes, class ids out of "
             "range, UTF-8 BOM, CRLF/CR, blank lines, Latin-1 and UTF-16 text; parse_labels and the dataset index",
    "data_yaml": "missing and wrong-typed keys, paths escaping the dataset root (../.., absolute), names that miss "
                 "the labels' classes, invalid / nested / aliased YAML; the data stage's prepare_dataset, leafyolo val",
    "coco": "missing and wrong-typed keys, NaN/inf sizes and boxes, unknown image and category ids, file names "
            "escaping the images folder, duplicates, invalid JSON; coco_to_yolo",
    "params": "every section of params.yaml: wrong types, NaN/inf, negative, huge, missing and unknown keys, "
              "invalid YAML; load_section",
    "model": "truncated, flipped, random, out-of-bounds flatbuffer offsets, wrong suffix, checkpoint fields with "
             "wrong values; LEAFYOLO(path) load/predict/info, leafyolo info|predict|val|export",
}


def table(rows: list[dict]) -> list[str]:
    lines = ["| kind | tried | clear errors | counted skips | accepted valid | unexplained | seconds |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['tried']} | {r['error']} | {r['skip']} | {r['valid']} | {r['unexplained']} "
                     f"| {r['seconds']:.1f} |")
    total = {k: sum(r[k] for r in rows) for k in ("tried", *CATEGORIES, "seconds")}
    lines.append(f"| **all** | **{total['tried']}** | {total['error']} | {total['skip']} | {total['valid']} | "
                 f"**{total['unexplained']}** | {total['seconds']:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="cases per kind = scale x the fuzz test's number")
    parser.add_argument("--kinds", nargs="+", default=list(EXAMPLES), choices=list(EXAMPLES))
    parser.add_argument("--out", default="bench/results/fuzz.md")
    args = parser.parse_args()
    header = stamp()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker(Path(tmp))
        try:
            for k, kind in enumerate(args.kinds, 1):
                n = max(1, round(EXAMPLES[kind] * args.scale))
                print(f"[fuzz {k}/{len(args.kinds)}] {kind}: {n} cases", flush=True)
                counts, bad, seconds = run_kind(kind, worker, n, strict=False)
                rows.append({"kind": kind, "tried": sum(counts.values()), **{c: counts[c] for c in CATEGORIES},
                             "seconds": seconds, "unexplained_cases": [{"case": repr(c), "detail": d} for c, d in bad]})
        finally:
            worker.close()
    lines = ["# Fuzzed input: how each mutated input ends", "", header, "",
             f"Cases drawn by hypothesis (derandomized: the same cases every run) from the fuzz test's strategies "
             f"(`tests/fuzz_cases.py`, run by `tests/test_fuzz.py` in CI), scale {args.scale:g}; each runs through the "
             f"project's own entry points in a worker process, at most {CASE_TIMEOUT:g} s per case. A clear error is a "
             "ValueError / FileNotFoundError (ParamsError, DatasetError, UnsafeCheckpointError) or the CLI's exit "
             "status 2 whose message names the offending file or key; a counted skip is an entry in the data layer's "
             "skip list with a reason naming the file; accepted valid means the mutation left a valid input and the "
             "result passed its kind's checks. Unexplained must be 0.", ""] + table(rows) + [""]
    lines += [f"- **{kind}**: {WHAT[kind]}" for kind in args.kinds]
    unexplained = [(r["kind"], u) for r in rows for u in r["unexplained_cases"]]
    if unexplained:
        lines += ["", "## Unexplained", ""] + [f"- {kind}: {u['detail']} (case `{u['case']}`)" for kind, u in unexplained]
    write_report(args.out, lines, rows)
    if unexplained:
        sys.exit(1)


if __name__ == "__main__":
    main()
