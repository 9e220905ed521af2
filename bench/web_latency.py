"""In-browser latency and accuracy of the pipeline's ONNX files: onnxruntime-web (wasm, headless Chromium) at 1 and
2 threads against native onnxruntime (Python, same threads) on the same file and the same letterboxed image, in one
run; plus, per file, mAP50 of the page's detections vs native ones on the first val images and the largest output
difference (what the web stage's FP16/FP32 choice rests on).

    python -m bench.web_latency [--models artifacts/onnx/model_fp32.onnx artifacts/onnx/model_fp16.onnx
        artifacts/calibrate/model_int8.onnx] [--data artifacts/data/dataset/data.yaml] [--threads 1 2] [--runs 100]
        [--warmup 20] [--warmup-s 2] [--profile-runs 50] [--val-images 200]

Timings are inference only (session.run; letterboxing and NMS excluded on both sides), medians with the 10th-90th
percentile spread, after `--warmup` runs and at least `--warmup-s` seconds of untimed runs on each side (Chromium
compiles WebAssembly with a baseline compiler first and moves hot functions to its optimising one while the page
runs: a page that detects frame after frame runs the optimised code). The first model is also profiled at 1
thread on both sides (onnxruntime's per-node kernel times: the page's printed to the console by the wasm build,
native ones from its JSON profile), grouped by kind of operation, so the table says where the browser loses its
time. Needs Chromium and `npm ci --prefix web` (scripts/web_env.sh).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.browser import call_with_image, chromium, open_page
from bench.stamp import stamp, write_report
from pipeline.config.stages import WebParams
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.labels import IMAGE_SUFFIXES, image_size, labels_for
from pipeline.evaluate.coco import coco_eval
from pipeline.export.web_bundle import build_bundle
from pipeline.export.web_serve import serve_in_thread
from pipeline.infer.backends import open_model, ort_session
from pipeline.infer.predict import predict, preprocess, read_image

REPO = Path(__file__).resolve().parents[1]
CONF, IOU = 0.001, 0.6  # evaluate's thresholds (params.yaml), for mAP


def spread(ms: list[float]) -> dict:
    p10, p50, p90 = np.percentile(ms, [10, 50, 90])
    return {"median_ms": float(p50), "p10_ms": float(p10), "p90_ms": float(p90), "runs": len(ms)}


def val_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def native_times(model: Path, x: np.ndarray, threads: int, runs: int, warmup: int, warmup_s: float = 0.0) -> list[float]:
    sess = ort_session(model, threads=threads)
    feed = {sess.get_inputs()[0].name: x[None]}
    t0 = time.perf_counter()
    for i in itertools.count():
        if i >= warmup and time.perf_counter() - t0 >= warmup_s:
            break
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
    return times


PROFILE_JS = """async ([runs]) => {
  const ort = await import('./ort/ort.wasm.min.mjs');
  const config = await (await fetch('config.json')).json();
  const session = await ort.InferenceSession.create(config.model, { executionProviders: ['wasm'], enableProfiling: true });
  const S = config.imgsz;
  const feeds = { [config.input]: new ort.Tensor('float32', new Float32Array(3 * S * S).fill(0.5), [1, 3, S, S]) };
  for (let i = 0; i < runs; i++) await session.run(feeds);
  session.endProfiling();
  await session.release();
  console.log('leafyolo-profile-end');
}"""


def op_kind(event: dict) -> str:
    """A profiled node's kind: convolutions by shape (depthwise, 1x1, full k x k), everything else by op type."""
    args = event["args"]
    if args["op_name"] not in ("Conv", "FusedConv"):
        return args["op_name"]
    w = next(iter(args["input_type_shape"][1].values()))
    if w[2] * w[3] == 1:
        return "1x1 conv"
    return "depthwise conv" if w[1] == 1 else "full conv"


def kernel_events(lines: list[str]) -> list[dict]:
    """onnxruntime profile lines (one JSON event each, as the wasm build prints them) -> its nodes' kernel events."""
    events = []
    for line in lines:
        line = line.strip().rstrip(",")
        if line.startswith("{") and "_kernel_time" in line:
            event = json.loads(line)
            if event.get("cat") == "Node":
                events.append(event)
    return events


def by_kind(events: list[dict]) -> dict[str, dict]:
    """Per kind of op: nodes, and microseconds per run (each node's median over the profiled runs, summed)."""
    times, kinds = collections.defaultdict(list), {}
    for e in events:
        times[e["name"]].append(e["dur"])
        kinds[e["name"]] = op_kind(e)
    out: dict[str, dict] = {}
    for name, durs in times.items():
        k = out.setdefault(kinds[name], {"nodes": 0, "us": 0.0})
        k["nodes"] += 1
        k["us"] += float(np.median(durs))
    return out


def web_profile(page, runs: int) -> dict[str, dict]:
    lines: list[str] = []
    page.on("console", lambda m: lines.extend(m.text.splitlines()))
    with page.expect_console_message(lambda m: m.text == "leafyolo-profile-end", timeout=300_000):
        page.evaluate(PROFILE_JS, [runs])
    return by_kind(kernel_events(lines))


def native_profile(model: Path, x: np.ndarray, runs: int, work: Path) -> dict[str, dict]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.enable_profiling = True
    opts.profile_file_prefix = str(work / "native_profile")
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x[None]}
    for _ in range(runs):
        sess.run(None, feed)
    events = json.loads(Path(sess.end_profiling()).read_text())
    return by_kind([e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")])


def ground_truth(paths: list[Path], nc: int) -> list[tuple[np.ndarray, np.ndarray, tuple[int, int]]]:
    gts = []
    for p in paths:
        h, w = image_size(p)
        lab = labels_for(p, nc).reshape(-1, 5)
        cx, cy, bw, bh = lab[:, 1] * w, lab[:, 2] * h, lab[:, 3] * w, lab[:, 4] * h
        gts.append((np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1), lab[:, 0], (h, w)))
    return gts


def accuracy(page, model: Path, paths: list[Path], names: list[str]) -> dict:
    """mAP50 of the page and of native onnxruntime on `paths`, the largest raw-output differences, and on how many
    images the two give the same number of detections with the same classes."""
    backend, imgsz = open_model(model), None
    web, native, d_box, d_score, same = [], [], 0.0, 0.0, 0
    for path in paths:
        r = call_with_image(page, "run", path, {"raw": True, "confThres": CONF, "iouThres": IOU})
        imgsz = imgsz or round((len(r["input"]) / 3) ** 0.5)
        boxes, scores = backend(np.asarray(r["input"], np.float32).reshape(1, 3, imgsz, imgsz))
        d_box = max(d_box, float(np.abs(np.asarray(r["boxes"], np.float32) - boxes.ravel()).max()))
        d_score = max(d_score, float(np.abs(np.asarray(r["scores"], np.float32) - scores.ravel()).max()))
        got = np.array([[*d["box"], d["score"], d["cls"]] for d in r["detections"]], np.float32).reshape(-1, 6)
        ref = predict(backend, path, conf_thres=CONF, iou_thres=IOU)[0].to_array()
        same += int(len(got) == len(ref) and np.array_equal(got[:, 5], ref[:, 5]))
        web.append(got)
        native.append(ref)
    gts = ground_truth(paths, len(names))
    return {"images": len(paths), "map50_web": coco_eval(gts, web, len(names), names)["map50"],
            "map50_native": coco_eval(gts, native, len(names), names)["map50"], "max_box_diff_px": d_box,
            "max_score_diff": d_score, "same_detections": same}


def measure(browser, model: Path, data: Path, args: argparse.Namespace, work: Path,
            profile: bool = False) -> tuple[list[dict], dict, dict]:
    cfg = load_data_yaml(data)
    paths = val_images(cfg.val)
    bundle = work / model.stem
    build_bundle(model, data, REPO / "web/page", REPO / "web/package-lock.json", bundle, WebParams(0.25, 0.45, 300))
    url, server = serve_in_thread(bundle)
    rows, acc, prof = [], {}, {}
    try:
        for threads in args.threads:
            page, info = open_page(browser, f"{url}?threads={threads}")
            if info["threads"] != threads or not info["crossOriginIsolated"]:
                raise RuntimeError(f"the page runs {info['threads']} threads (asked {threads}), isolated: "
                                   f"{info['crossOriginIsolated']}")
            x = preprocess(read_image(paths[0]), info["config"]["imgsz"])[0]
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < args.warmup_s:  # untimed: lets Chromium tier the hot code up
                call_with_image(page, "benchmark", paths[0], 0, 20)
            web = spread(call_with_image(page, "benchmark", paths[0], args.runs, args.warmup))
            nat = spread(native_times(model, x, threads, args.runs, args.warmup, args.warmup_s))
            rows.append({"model": model.name, "bytes": model.stat().st_size, "threads": threads, "web": web,
                         "native": nat, "ratio": web["median_ms"] / nat["median_ms"], "warmup_s": args.warmup_s})
            print(f"  {model.name} {threads} thread(s): browser {web['median_ms']:.2f} ms, native "
                  f"{nat['median_ms']:.2f} ms", flush=True)
            if threads == args.threads[0] and args.val_images:
                acc = {"model": model.name, "bytes": model.stat().st_size,
                       **accuracy(page, model, paths[:args.val_images], cfg.names)}
            if threads == 1 and profile:
                prof = {"model": model.name, "runs": args.profile_runs, "web": web_profile(page, args.profile_runs),
                        "native": native_profile(model, x, args.profile_runs, work)}
            page.close()
    finally:
        server.shutdown()
    return rows, acc, prof


def profile_lines(prof: dict) -> list[str]:
    """Where the time goes: kernel microseconds per run by kind of op, page vs native, largest first."""
    web, nat = prof["web"], prof["native"]
    total_web, total_nat = (sum(k["us"] for k in side.values()) for side in (web, nat))
    lines = ["", f"Where the time goes: `{prof['model']}` at 1 thread, onnxruntime's own per-node kernel times "
             f"(median of {prof['runs']} profiled runs per node, summed by kind of op; profiling slows both sides, "
             "so the totals exceed the timings above). `Reorder*` are the native build's NCHWc layout conversions, "
             "which the wasm build does not make.", "",
             "| op kind | nodes (browser / native) | browser µs | native µs | browser / native | share of browser time |",
             "|---|---:|---:|---:|---:|---:|"]
    for kind in sorted(set(web) | set(nat), key=lambda k: -max(web.get(k, {}).get("us", 0), nat.get(k, {}).get("us", 0))):
        w, n = web.get(kind, {"nodes": 0, "us": 0.0}), nat.get(kind, {"nodes": 0, "us": 0.0})
        ratio = f"{w['us'] / n['us']:.2f}" if w["us"] and n["us"] else "-"
        lines.append(f"| {kind} | {w['nodes']} / {n['nodes']} | {w['us']:.0f} | {n['us']:.0f} | {ratio} | "
                     f"{100 * w['us'] / total_web:.1f} % |")
    lines.append(f"| **all kernels** | {sum(k['nodes'] for k in web.values())} / "
                 f"{sum(k['nodes'] for k in nat.values())} | {total_web:.0f} | {total_nat:.0f} | "
                 f"{total_web / total_nat:.2f} | 100 % |")
    return lines


def report(header: str, version: str, image: Path, rows: list[dict], accs: list[dict], load: list[float],
           prof: dict | None = None) -> list[str]:
    def ms(s: dict) -> str:
        return f"{s['median_ms']:.2f} ({s['p10_ms']:.2f}-{s['p90_ms']:.2f})"

    lines = ["# In-browser latency: onnxruntime-web (wasm) vs native onnxruntime", "", header, "",
             f"Headless {version}, onnxruntime-web wasm (SIMD, threads through SharedArrayBuffer: the page is served "
             f"cross-origin isolated) vs onnxruntime (Python, CPU) on the same ONNX file and the same letterboxed "
             f"image (`{image.name}`); inference only, median (10th-90th percentile) of "
             f"{rows[0]['web']['runs']} runs after at least {rows[0]['warmup_s']:g} s of untimed runs on each side. "
             f"1-minute load average of the machine at the start and "
             f"the end: {load[0]:.1f}, {load[1]:.1f} (other work on the cores slows both sides).", "",
             "| model | bytes | threads | browser ms | native ms | browser / native |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| `{r['model']}` | {r['bytes']:,} | {r['threads']} | {ms(r['web'])} | {ms(r['native'])} | "
              f"{r['ratio']:.2f} |" for r in rows]
    if accs:
        lines += ["", f"Accuracy in the page vs native on the first {accs[0]['images']} val images (score > {CONF}, "
                  f"NMS IoU {IOU}, as `evaluate`): mAP50 of each, the largest output differences (box distances in "
                  "input pixels, scores), and images with the same detection count and classes.", "",
                  "| model | bytes | mAP50 browser | mAP50 native | max box diff (px) | max score diff | same detections |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| `{a['model']}` | {a['bytes']:,} | {a['map50_web']:.4f} | {a['map50_native']:.4f} | "
                  f"{a['max_box_diff_px']:.2g} | {a['max_score_diff']:.2g} | {a['same_detections']}/{a['images']} |"
                  for a in accs]
    return lines + (profile_lines(prof) if prof else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["artifacts/onnx/model_fp32.onnx",
                                                        "artifacts/onnx/model_fp16.onnx",
                                                        "artifacts/calibrate/model_int8.onnx"],
                        help="ONNX files; the first is also profiled by kind of op")
    parser.add_argument("--data", default="artifacts/data/dataset/data.yaml", help="val images, labels, class names")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20, help="untimed runs before timing, at least")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="seconds of untimed runs before timing, at least")
    parser.add_argument("--profile-runs", type=int, default=50, help="profiled runs of the first model (0: none)")
    parser.add_argument("--val-images", type=int, default=200, help="images for the accuracy table (0: none)")
    parser.add_argument("--out", default="bench/results/web_latency.md")
    args = parser.parse_args()
    for path in [*args.models, args.data]:
        if not Path(path).is_file():
            parser.error(f"{path}: not found (`dvc repro` writes the pipeline's files; --models and --data name others)")
    header = stamp()
    load = [os.getloadavg()[0]]
    rows, accs, prof = [], [], {}
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        for i, model in enumerate(map(Path, args.models)):
            print(f"[web_latency] {model}", flush=True)
            r, a, p = measure(browser, model, Path(args.data), args, Path(tmp), profile=i == 0 and args.profile_runs > 0)
            rows += r
            accs += [a] if a else []
            prof = prof or p
        version = f"Chromium {browser.version}"
    load.append(os.getloadavg()[0])
    image = val_images(load_data_yaml(args.data).val)[0]
    write_report(args.out, report(header, version, image, rows, accs, load, prof),
                 {"latency": rows, "accuracy": accs, "load_average": load, "profile": prof})


if __name__ == "__main__":
    main()
