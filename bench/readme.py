"""The README's figures, generated from the committed files they come from.

Every measured number in README.md stands between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`, and
BLOCKS[NAME] writes it from its source: the default run's metrics under artifacts/, a bench report under
bench/results/ (its JSON for the figures, its Markdown's stamp line for the commit and machine), params.yaml or the
model code. `tests/test_readme.py` fails when a block differs from what its source gives, and when a number outside
the blocks is not one of the few constants in HAND_TYPED.

    python -m bench.readme            # rewrite the blocks of README.md and docs/*.md in place
    python -m bench.readme --check    # exit 1 naming every stale block
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bench.results_table import markdown as results_markdown
from bench.stamp import STAMP, stale
from pipeline.evaluate.results import read_metrics
from pipeline.io.atomic import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
STAGES = ("data", "teacher", "distill", "prune", "finetune", "calibrate", "onnx", "web", "tflite", "evaluate")
BLOCK = re.compile(r"(<!-- generated:([a-z_]+) -->\n)(.*?)(<!-- /generated:\2 -->)", re.S)

# Numbers a person may type outside the generated blocks: constants of the product or of the hardware, not results.
HAND_TYPED = {
    "1,000,000": "the INT8 TFLite size target in bytes",
    "3.11": "the Python version",
    "95": "the interval level in %",
    "32": "32-bit pointers",
    "64": "a 64-bit host",
}


def report(name: str, results: str = "bench/results") -> tuple[Any, str]:
    """(figures, provenance) of RESULTS/NAME (a bench report, or a study's with results="studies/results"): its JSON,
    and 'commit X, N cores (CPU), date' from its stamp, marked when the commit predates a change that moves its
    figures (bench.stamp)."""
    md = (REPO / results / f"{name}.md").read_text()
    stamp = STAMP.search(md)
    if stamp is None:
        raise ValueError(f"{results}/{name}.md has no stamp line (commit, cores, CPU, date)")
    notes = stale(name, stamp["commit"])
    return (json.loads((REPO / results / f"{name}.json").read_text()),
            stamp.group(0) + (f"; {' and '.join(notes)}, not re-run yet" if notes else ""))


def params() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def headline(root: Path) -> str:
    final = read_metrics(root, "evaluate")["artifacts"]["tflite_int8"]
    student = read_metrics(root, "distill")
    return (f"The committed default run ends at a **{final['size_bytes']:,}-byte** full-INT8 TFLite file with "
            f"{final['params']:,} parameters (the student before pruning: {student['params']:,}) and mAP50 "
            f"{final['map50']:.3f} [{final['map50_ci_low']:.3f}, {final['map50_ci_high']:.3f}] on the embedded "
            f"dataset's {read_metrics(root, 'evaluate')['tflm']['images']:,} val images.")


def repro_time(root: Path) -> str:
    sweep, stamp = report("pipeline_sweep")
    seconds = sweep["cold"]["seconds"]
    machine = STAMP.search(stamp)
    summed = " (the sum of its stages' own seconds)" if sweep["cold"].get("reused") else ""
    return (f"A cold `dvc repro` of the defaults took {sweep['cold']['wall'] / 60:.0f} minutes{summed} on "
            f"{machine['cores']} cores of an {machine['cpu']} (commit {machine['commit']}; training "
            f"{sum(seconds[s] for s in ('teacher', 'distill', 'finetune')):.0f} s, evaluation "
            f"{seconds['evaluate']:.0f} s; `python -m bench.pipeline_sweep`"
            + (f"; {stamp.split('; ', 1)[1]}" if "not re-run yet" in stamp else "") + ").")


def results(root: Path) -> str:
    walls = {s: read_metrics(root, s, "report.json" if s == "data" else "metrics.json")["seconds"] for s in STAGES}
    times = ", ".join(f"{s} {v:.0f}" for s, v in walls.items())
    return (results_markdown(root) + f"\n\nSeconds per stage of this run (its metrics files): {times}; "
            f"{sum(walls.values()) / 60:.0f} minutes in all.")


def seed_spread(root: Path) -> str:
    rows, stamp = report("seed_spread")
    final = next(r for r in rows if r["artifact"] == "tflite_int8")
    floor = params()["gate"]["min_map50"]
    tune, tune_stamp = report("finetune_spread_alone", "studies/results")
    return (f"Over seeds {'/'.join(str(i) for i in range(len(final['values'])))} the default recipe's final INT8 "
            f"mAP50 was {' / '.join(f'{v:.3f}' for v in final['values'])} (mean {final['mean']:.3f}, standard "
            f"deviation {final['std']:.3f}; `python -m bench.seed_spread`, {stamp}), while one run's interval over "
            f"the val images is ±{final['bootstrap_half_width']:.3f}. `gate.min_map50` is {floor}: the mean minus "
            f"{(final['mean'] - floor) / final['std']:.1f} standard deviations, so a run "
            f"{(1 - floor / final['mean']) * 100:.0f} % under the mean fails. Two single runs that differ by less "
            f"than {1.96 * final['std'] * 2 ** 0.5:.2f} mAP50 are not told apart. A `dvc exp run` that changes "
            f"pruning or a later stage reuses the trained student, so its noise is fine-tuning's alone: standard "
            f"deviation {tune['std']:.4f} over seeds {'/'.join(str(r['seed']) for r in tune['runs'])} of one pruned "
            f"model (`python -m studies.finetune_spread`, {tune_stamp}).")


def chain_vs_alone(root: Path) -> str:
    data, stamp = report("chain_vs_alone")
    runs, diff, timing = data["runs"], data["difference"], data["timing"]
    mean = {arm: statistics.fmean(r["map50"] for r in runs[arm].values()) for arm in ("chain", "alone")}
    epochs = {arm: next(iter(runs[arm].values()))["distill_epochs"] for arm in ("chain", "alone")}
    return (f"Why the default trains no teacher: at equal training time (the student alone trained "
            f"{timing['ratio']:.2f}x the chain's seconds, {epochs['alone']} epochs against a `leafyolo_s` teacher "
            f"and {epochs['chain']} distilled epochs) the student alone ended at final INT8 mAP50 {mean['alone']:.3f}, "
            f"the chain at {mean['chain']:.3f}: chain minus alone {diff['mean']:+.3f} [{diff['low']:+.3f}, "
            f"{diff['high']:+.3f}] paired over seeds {'/'.join(map(str, diff['seeds']))} (`python -m "
            f"bench.chain_vs_alone`, {stamp}). At this budget the teacher scores below the student it would teach.")


def gate(root: Path) -> str:
    checks = json.loads((root / "artifacts" / "gate" / "gate.json").read_text())["checks"]
    lines = ["| budget (`params.yaml`) | limit | committed run | margin |", "|---|---:|---:|---:|"]
    for c in checks.values():
        fmt = (lambda v: f"{v:,.0f}") if c["limit"] >= 1000 else (lambda v: f"{v:.3f}")
        margin = (c["limit"] - c["value"]) if c["rule"] == "<=" else (c["value"] - c["limit"])
        lines.append(f"| `{c['key']}` | {c['rule']} {fmt(c['limit'])} | {fmt(c['value'])} | {fmt(margin)} |")
    return "\n".join(lines)


def sweep(root: Path) -> str:
    data, stamp = report("pipeline_sweep")
    rows = ["| `prune.sparsity` | params | INT8 TFLite bytes | INT8 mAP50 [95% interval] | gate |",
            "|---:|---:|---:|---:|---|"]
    for p in data["points"]:
        label = f"{p['sparsity']}{' (default)' if 'baseline' in p['name'] else ''}"
        rows.append(f"| {label} | {p['params']:,} | {p['int8_bytes']:,} | {p['int8_map50']:.3f} [{p['int8_ci'][0]:.3f}, "
                    f"{p['int8_ci'][1]:.3f}] | {'passed' if p['gate_passed'] else 'failed'} |")
    return "\n".join(rows) + f"\n\nOne seed each, `dvc exp run` experiments (`python -m bench.pipeline_sweep`, {stamp})."


def deploy(root: Path) -> str:
    rows, stamp = report("deploy_compare")
    names = {"leafyolo_u-p30": "`leafyolo_u` pruned 30 % (ours)", "yolov8n": "Ultralytics YOLOv8n",
             "yolo11n": "Ultralytics YOLO11n"}
    lines = ["| model | px | params | GFLOPs | INT8 TFLite bytes | x YOLOv8n size | LiteRT ms (1 thread) | "
             "x YOLOv8n time |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["quant_type"] == "per-tensor" and r["model"] in names and r["model"] != "yolo11n":
            lines.append(f"| {names[r['model']]} | {r['imgsz']} | {r['params']:,} | {r['gflops']:.2f} | "
                         f"{r['tflite_bytes']:,} | {r['size_ratio']:.2f} | {r['tflite_int8_ms']:.1f} | "
                         f"{r['time_ratio']:.2f} |")
    return "\n".join(lines) + f"\n\n`python -m bench.deploy_compare`, {stamp}. {time_goes()}"


def time_goes() -> str:
    """Where our INT8 file's LiteRT time goes, from bench/results/op_profile (the builtin kernels' per-operator
    profile at its first size; XNNPACK is timed for the whole file only)."""
    data, stamp = report("op_profile")
    size = min(data["leafyolo_u-p30"], key=int)
    ours, v8 = data["leafyolo_u-p30"][size], data["yolov8n"][size]

    def share(keep: Callable[[dict[str, Any]], bool]) -> float:
        return 100 * sum(op["ms"] for op in ours["ops"] if keep(op)) / ours["total_ms"]

    return (f"Where the time goes ({size} px, 1 thread, per operator on LiteRT's builtin kernels): depthwise "
            f"convolutions take {share(lambda op: op['type'] == 'DEPTHWISE_CONV_2D'):.0f} % of our file's time, "
            f"convolutions {share(lambda op: op['type'] == 'CONV_2D'):.0f} %, and the stride-4 and stride-8 feature "
            f"maps {share(lambda op: op['stride'] in ('/4', '/8')):.0f} %; there it takes "
            f"{ours['whole_ms'] / v8['whole_ms']:.2f}x YOLOv8n's time, and {ours['xnnpack_ms'] / v8['xnnpack_ms']:.2f}x "
            f"under XNNPACK, LiteRT's default (`python -m bench.op_profile`, {stamp}).")


def arena(root: Path) -> str:
    rows, stamp = report("tflm_arena")
    ours = {r["imgsz"]: r["arena_bytes"] for r in rows if r["model"] == "leafyolo_u-p30"}
    v8 = {r["imgsz"]: r["arena_bytes"] for r in rows if r["model"] == "yolov8n"}
    run = read_metrics(root, "evaluate")["tflm"]["arena_bytes"]
    sizes = " / ".join(str(s) for s in sorted(ours))
    return (f"The default run's file needs a {run:,}-byte tensor arena (`gate.max_arena_bytes`: "
            f"{params()['gate']['max_arena_bytes']:,}). Activations grow with the input: at {sizes} px the deployable "
            f"architecture needs {' / '.join(f'{ours[s]:,}' for s in sorted(ours))} bytes, YOLOv8n "
            f"{' / '.join(f'{v8[s]:,}' for s in sorted(v8))} (`python -m bench.tflm_arena`, nc=80, {stamp}).")


def web(root: Path) -> str:
    data, stamp = report("web_latency")
    fp32 = [r for r in data["latency"] if r["model"] == "model_fp32.onnx"]
    acc = next(r for r in data["accuracy"] if r["model"] == "model_fp32.onnx")
    bundle = read_metrics(root, "web")
    return (f"The bundle is {bundle['bundle_bytes'] / 1e6:.1f} MB (most of it onnxruntime-web's wasm). In headless "
            f"Chromium the page takes " + " / ".join(f"{r['ratio']:.1f}x" for r in fp32) + " native onnxruntime's time "
            f"at {' / '.join(str(r['threads']) for r in fp32)} threads on the same file, and scores the same mAP50 as "
            f"native ({acc['map50_web']:.3f} on {acc['images']} val images; `python -m bench.web_latency`, {stamp})."
            + web_profile(data.get("profile")) + web_int8(data["latency"]))


def web_int8(rows: list[dict]) -> str:
    """The page's INT8 ONNX against its FP32 one at 1 thread ('' when the report has no INT8 row)."""
    one = {r["model"]: r["web"]["median_ms"] for r in rows if r["threads"] == 1}
    if "model_int8.onnx" not in one or "model_fp32.onnx" not in one:
        return ""
    return (f" The INT8 ONNX is {'slower' if one['model_int8.onnx'] > one['model_fp32.onnx'] else 'faster'} in the "
            f"page than the FP32 one ({one['model_int8.onnx']:.1f} against {one['model_fp32.onnx']:.1f} ms at 1 "
            "thread).")


def web_profile(prof: dict | None) -> str:
    """Where the page's time goes, from the report's per-kind kernel profile ('' when it has none)."""
    if not prof:
        return ""
    web, nat = prof["web"], prof["native"]
    total = sum(k["us"] for k in web.values())
    convs = [k for k in ("1x1 conv", "depthwise conv", "full conv") if k in web and k in nat]
    share = sum(web[k]["us"] for k in convs) / total
    return (f" The gap is in onnxruntime's own kernels, not the page: convolutions are {share:.0%} of the page's "
            f"kernel time, and " + ", ".join(f"{k}s run {web[k]['us'] / nat[k]['us']:.1f}x" for k in convs)
            + " native's.")


def bccd(root: Path) -> str:
    rows, stamp = report("accuracy_compare")
    text = (root / "bench/results/accuracy_compare.md").read_text()
    imgsz, n_val = re.search(r"Image size (\d+)", text)[1], re.search(r"same (\d+) val images", text)[1]
    ours, v8 = rows[:2]
    timed = f" and {rows[2]['int8_map50']:.3f} for as long" if len(rows) > 2 else ""  # reports before a time-matched peer
    return (f"On real data (BCCD blood cells, {imgsz} px, {n_val} val images; `python -m bench.accuracy_compare "
            f"--data ../shared/datasets/bccd/data.yaml`, {stamp}): our chain's INT8 TFLite scores "
            f"{ours['int8_map50']:.3f} mAP50 at {ours['int8_bytes']:,} bytes; YOLOv8n trained from scratch "
            f"{v8['int8_map50']:.3f} for as many epochs{timed}, at {v8['int8_bytes']:,} bytes "
            f"({ours['int8_map50_per_mb']:.2f} against {v8['int8_map50_per_mb']:.2f} mAP50 per MB). One run each.")


def model_family(root: Path) -> str:
    from bench.model_table import markdown, rows

    return markdown(rows())


BLOCKS: dict[str, Callable[[Path], str]] = {
    "headline": headline, "repro_time": repro_time, "results": results, "chain_vs_alone": chain_vs_alone, "gate": gate,
    "seed_spread": seed_spread, "sweep": sweep, "deploy": deploy, "arena": arena, "web": web, "bccd": bccd,
    "model_family": model_family}


def render(text: str, root: Path = REPO) -> str:
    """`text` with every generated block rewritten from its source; an unknown block name is an error."""
    def fill(m: re.Match) -> str:
        if m.group(2) not in BLOCKS:
            raise ValueError(f"README block 'generated:{m.group(2)}' has no generator (known: {sorted(BLOCKS)})")
        return m.group(1) + BLOCKS[m.group(2)](root).strip() + "\n" + m.group(4)
    return BLOCK.sub(fill, text)


def stale_blocks(text: str, root: Path = REPO) -> list[str]:
    """Names of the blocks whose text differs from what their sources give."""
    fresh = {m.group(2): m.group(3) for m in BLOCK.finditer(render(text, root))}
    return [m.group(2) for m in BLOCK.finditer(text) if m.group(3) != fresh[m.group(2)]]


NUMBER = re.compile(r"(?<![\w.\-/])\d[\d,]*(?:\.\d+)?(?![\w/]|\.\d)")
# not prose: code, generated blocks, link targets, and the params table's rows (tests/test_readme_params.py holds
# their values to params.yaml)
NOT_PROSE = re.compile(r"```.*?```|`[^`\n]*`|<!-- generated:([a-z_]+) -->.*?<!-- /generated:\1 -->|\]\([^)]*\)|"
                       r"https?://\S+|^\| `[a-z_]+\.[a-z_.]+` \|.*$", re.S | re.M)


def hand_typed(text: str) -> list[str]:
    """Numbers in `text` outside generated blocks, code and links that are not constants of HAND_TYPED."""
    prose = NOT_PROSE.sub(" ", text)
    return [n.rstrip(",") for n in NUMBER.findall(prose) if n.rstrip(",") not in HAND_TYPED]


def documents(root: Path = REPO) -> list[Path]:
    """The files whose generated blocks `python -m bench.readme` keeps: README.md and docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report stale blocks (exit 1 if any)")
    args = parser.parse_args()
    stale = []
    for path in documents():
        text = path.read_text()
        if args.check:
            stale += [f"{path.relative_to(REPO)}: {name}" for name in stale_blocks(text)]
        elif BLOCK.search(text):
            atomic_write_text(path, render(text))
            print(f"wrote {path.relative_to(REPO)} ({len(BLOCK.findall(text))} generated blocks)")
    if args.check:
        print("stale: " + ", ".join(stale) if stale else "every generated block matches its source")
        sys.exit(1 if stale else 0)


if __name__ == "__main__":
    main()
