"""Did a change alter any result? Compare two DVC projects' `dvc.lock` outputs (for example the default run before
and after a refactor, each `dvc repro`-ed in its own clone): every output is reported as `same bytes` (equal hash),
`same but timings` (a JSON file whose only differences are wall times, throughput and latency) or `DIFFERENT`, with
each differing metric and its largest absolute difference.

    python -m bench.lock_compare BEFORE_DIR AFTER_DIR [--out bench/results/lock_compare.md] [--title TEXT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from bench.stamp import stamp, write_report

TIMING_WORDS = ("seconds", "latency", "images_per_second", "timestamp")  # keys that measure the machine, not the result


def lock_outputs(project: Path) -> dict[str, str]:
    """Output path -> its hash in `project/dvc.lock`."""
    lock_path = project / "dvc.lock"
    if not lock_path.is_file():
        raise FileNotFoundError(f"{lock_path} does not exist: run `dvc repro` in {project} first")
    lock = yaml.safe_load(lock_path.read_text())
    return {o["path"]: o.get("md5", "") for stage in lock.get("stages", {}).values() for o in stage.get("outs", [])}


def differences(a: Any, b: Any, key: str = "") -> list[tuple[str, float | None]]:
    """(dotted key, largest absolute difference or None when not numeric) for every value that differs, keys that
    measure time or speed left out."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            name = f"{key}.{k}" if key else str(k)
            if any(word in str(k) for word in TIMING_WORDS):
                continue
            if k not in a or k not in b:
                out.append((name, None))
            else:
                out += differences(a[k], b[k], name)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{key}[{i}]")]
    if a == b:
        return []
    numeric = isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool)
    return [(key, abs(float(a) - float(b)) if numeric else None)]


def revision(project: Path) -> str:
    """The project's git commit, `+changes` when its tracked code differs from it (dvc.lock and artifacts/, which
    `dvc repro` rewrites, left out; "no git" outside a checkout)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode:
        return "no git"
    changed = git("diff", "--quiet", "HEAD", "--", ".", ":!dvc.lock", ":!artifacts").returncode
    return head.stdout.strip() + ("+changes" if changed else "")


def compare(before: Path, after: Path) -> list[dict[str, Any]]:
    a, b = lock_outputs(before), lock_outputs(after)
    rows = []
    for path in sorted(set(a) | set(b)):
        row: dict[str, Any] = {"path": path, "before": a.get(path), "after": b.get(path), "differences": []}
        if a.get(path) and a.get(path) == b.get(path):
            row["verdict"] = "same bytes"
        elif path.endswith(".json") and (before / path).is_file() and (after / path).is_file():
            diffs = differences(json.loads((before / path).read_text()), json.loads((after / path).read_text()))
            row["differences"] = [{"key": k, "max_abs_diff": d} for k, d in diffs]
            row["verdict"] = "DIFFERENT" if diffs else "same but timings"
        else:
            row["verdict"] = "DIFFERENT"
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--out", default="bench/results/lock_compare.md")
    parser.add_argument("--title", default="Same results before and after a change",
                        help="the report's heading (what the two projects are)")
    args = parser.parse_args()
    rows = compare(args.before, args.after)
    lines = [f"# {args.title} (`dvc.lock` outputs)", "", stamp(), "",
             f"`{args.before}` (commit {revision(args.before)}) against `{args.after}` (commit "
             f"{revision(args.after)}): {sum(r['verdict'] == 'same bytes' for r in rows)} outputs "
             f"byte-identical, {sum(r['verdict'] == 'same but timings' for r in rows)} metrics files equal but for "
             f"wall times and latency, {sum(r['verdict'] == 'DIFFERENT' for r in rows)} different.", "",
             "| output | verdict | what differs (largest absolute difference) |", "|---|---|---|"]
    for r in rows:
        shown = ", ".join(f"`{d['key']}`" + (f" ({d['max_abs_diff']:.1e})" if d["max_abs_diff"] is not None else "")
                          for d in r["differences"][:6])
        more = f" and {len(r['differences']) - 6} more" if len(r["differences"]) > 6 else ""
        lines.append(f"| `{r['path']}` | {r['verdict']} | {shown}{more} |")
    write_report(args.out, lines, rows)
    print("\n".join(lines[4:]))


if __name__ == "__main__":
    main()
