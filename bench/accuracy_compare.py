"""Accuracy per byte on real data: the pipeline's final INT8 TFLite against Ultralytics YOLOv8n trained from scratch
on the same data, image size and CPU, then exported to full-INT8 TFLite through the same onnx2tf path.

1. Our chain: a scratch DVC project with `data.source` = the given data.yaml (other params from params.yaml), `dvc
   repro` (teacher, distillation, pruning, fine-tuning, PTQ, ONNX, TFLite).
2. YOLOv8n (built from its yaml, no pretrained weights) trained by Ultralytics in the bench environment on the
   chain's validated copy of the dataset twice: for as many epochs as our student trains (distill + fine-tune
   epochs), and for the same wall-clock time as our whole chain's training (teacher included), at the same image
   size and batch; each exported with the same graph contract, then converted to full-INT8 TFLite by the pipeline,
   calibrated on the same `calibrate.subset_size` training images.
3. Every FP32 and INT8 file is evaluated by the pipeline's evaluator on the same val images, with 95 % bootstrap
   intervals over those images.

    python -m bench.accuracy_compare --data ../shared/datasets/bccd/data.yaml [--params params.yaml] [--work DIR]
                                     [--out bench/results/accuracy_compare.md]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench.dvc_project import commit, load_params, make_project, run
from bench.stamp import stamp, write_report
from bench.ultralytics_env import bench_python, finish_onnx, run_side
from pipeline.config.params import load_section
from pipeline.config.stages import CalibrateParams, DistillParams, EvaluateParams, FinetuneParams, TeacherParams
from pipeline.data.calibration import draw_calibration_images
from pipeline.data.data_yaml import load_data_yaml
from pipeline.data.dataset import YoloDataset
from pipeline.evaluate.evaluator import evaluate
from pipeline.export.tflite_export import export_tflite_int8
from pipeline.infer.backends import OnnxBackend, TFLiteBackend
from pipeline.io.jsonio import read_json

TRAINED = ("teacher", "distill", "finetune")


def our_chain(params: dict[str, Any], data: Path, work: Path) -> tuple[Path, dict[str, Any]]:
    """Run the DVC chain on `data`; return the project and its evaluate metrics plus training seconds."""
    p = copy.deepcopy(params)
    p["data"]["source"] = str(data.resolve())
    cfg = load_data_yaml(data)
    p["data"]["dep"] = os.path.commonpath([str(data.resolve().parent), str(cfg.root)])  # DVC hashes the dataset
    p["gate"].update(max_bytes=10**12, min_map50=0.0, max_int8_drop=1.0, min_int8_retention=0.0)  # keep every figure
    project = make_project(work / "project", p)
    run(["dvc", "repro"], project, timeout=6 * 3600)
    commit(project, "chain")
    metrics = read_json(project / "artifacts/evaluate/metrics.json")
    stage = {s: read_json(project / f"artifacts/{s}/metrics.json") for s in TRAINED}
    return project, {"artifacts": metrics["artifacts"], "train_seconds": sum(stage[s]["seconds"] for s in TRAINED),
                     "params": metrics["final"]["params"],  # epochs each stage ran (min_steps may add some)
                     "epochs": {s: stage[s].get("train_epochs") for s in TRAINED}}


def ultralytics_yaml(dataset: Path, out: Path) -> Path:
    """The chain's validated dataset copy, with an absolute `path` (Ultralytics resolves relative paths elsewhere)."""
    cfg = yaml.safe_load((dataset / "data.yaml").read_text())
    cfg["path"] = str(dataset.resolve())
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def score(backend: Any, val: YoloDataset, ep: EvaluateParams) -> dict[str, float]:
    m = evaluate(backend, val, conf_thres=ep.conf_thres, iou_thres=ep.iou_thres, progress=False,
                 bootstrap=ep.bootstrap_resamples, bootstrap_seed=ep.bootstrap_seed)
    return {k: float(m[k]) for k in ("map50", "map", "map50_ci_low", "map50_ci_high") if k in m}


def ci(m: dict) -> str:
    return f"{m['map50']:.3f}" + (f" [{m['map50_ci_low']:.3f}, {m['map50_ci_high']:.3f}]" if "map50_ci_low" in m else "")


def row(name: str, params: int, epochs: str, train_s: float, fp32: dict, int8: dict, int8_bytes: int) -> dict:
    return {"model": name, "params": params, "epochs": epochs, "train_seconds": train_s, "fp32": fp32, "int8": int8,
            "fp32_map50": fp32["map50"], "fp32_map": fp32["map"], "int8_map50": int8["map50"], "int8_map": int8["map"],
            "int8_bytes": int8_bytes, "int8_map50_per_mb": int8["map50"] / (int8_bytes / 1e6)}


def ultralytics_run(args: argparse.Namespace, dataset: Path, work: Path, tag: str, imgsz: int, batch: int, seed: int,
                    calib: Any, epochs: int, seconds: float = 0.0) -> dict[str, Any]:
    """Train YOLOv8n by epochs (or for `seconds` of wall clock), export, convert to full-INT8 TFLite."""
    ul_dir = work / f"ultralytics_{tag}"
    onnx_path = ul_dir / "fp32.onnx"
    cmd = ["train", "--cfg", args.cfg, "--data", str(ultralytics_yaml(dataset, work / "ul_data.yaml")),
           "--imgsz", str(imgsz), "--epochs", str(epochs), "--batch", str(batch), "--seed", str(seed),
           "--workdir", str(ul_dir / "runs"), "--out", str(onnx_path)] + (["--seconds", str(seconds)] if seconds else [])
    ul = run_side(cmd, ul_dir, timeout=6 * 3600)
    finish_onnx(onnx_path)
    tfl = export_tflite_int8(onnx_path, ul_dir, calib, out_path=ul_dir / "int8.tflite", keep_float32=False)
    return {**ul, "onnx": onnx_path, "tflite": tfl}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="a YOLO data.yaml")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--cfg", default="yolov8n.yaml", help="the Ultralytics model yaml")
    parser.add_argument("--work", default=None)
    parser.add_argument("--out", default="bench/results/accuracy_compare.md")
    args = parser.parse_args()
    bench_python()  # fail now, not after our chain's training, when the bench environment is missing
    load_data_yaml(args.data)  # likewise for a missing or malformed data.yaml (the error names the file)
    params = load_params(args.params)
    tp, dp = load_section(args.params, "teacher", TeacherParams), load_section(args.params, "distill", DistillParams)
    load_section(args.params, "finetune", FinetuneParams)  # checked before the chain runs
    cp, ep = load_section(args.params, "calibrate", CalibrateParams), load_section(args.params, "evaluate", EvaluateParams)
    imgsz = dp.train.imgsz
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        print(f"[compare 1/3] our chain (dvc repro) on {args.data}", flush=True)
        project, ours = our_chain(params, Path(args.data), work)
        ran = ours["epochs"]  # the student's epochs as run: train.epochs, raised by min_steps on a small dataset
        epochs = ran["distill"] + ran["finetune"]
        dataset = project / "artifacts/data/dataset"
        calib = draw_calibration_images(dataset / "data.yaml", imgsz, cp.subset_size, seed=cp.seed)
        print(f"[compare 2/3] Ultralytics {args.cfg} from scratch: {epochs} epochs, then {ours['train_seconds']:.0f} s "
              f"of training (our chain's) at {imgsz}, batch {dp.train.batch_size}", flush=True)
        def peer(tag: str, **budget: Any) -> dict[str, Any]:
            return ultralytics_run(args, dataset, work, tag, imgsz, dp.train.batch_size, dp.train.seed, calib, **budget)

        by_epochs = peer("epochs", epochs=epochs)
        by_time = peer("time", epochs=1000, seconds=ours["train_seconds"])
        print("[compare 3/3] evaluating every file on the same val images", flush=True)
        data = load_data_yaml(dataset / "data.yaml")
        val = YoloDataset(data.val, data.nc, imgsz, names=data.names)
        a = ours["artifacts"]
        distils = dp.alpha > 0
        how = f"distilled from `{tp.variant}`" if distils else "trained alone (no teacher)"
        teacher = f"teacher {ran['teacher'] or 'given'} + " if distils else ""
        rows = [row(f"`{dp.variant}` chain: {how}, pruned, fine-tuned", ours["params"],
                    f"{teacher}student {ran['distill']} + fine-tune {ran['finetune']}",
                    ours["train_seconds"], a["finetune"], a["tflite_int8"], a["tflite_int8"]["size_bytes"])]
        for what, ul in ((f"{epochs} epochs (the student's)", by_epochs), ("our chain's training time", by_time)):
            rows.append(row(f"Ultralytics `{Path(args.cfg).stem}` from scratch, {what}", ul["params"], f"{ul['epochs']}",
                            ul["train_seconds"], score(OnnxBackend(ul["onnx"]), val, ep),
                            score(TFLiteBackend(ul["tflite"]["path"]), val, ep), ul["tflite"]["size_bytes"]))
        for r in rows:  # what the README's sentence names beside the scores
            r.update(imgsz=imgsz, val_images=len(val))
    lines = [f"# Accuracy per byte on `{args.data}`", "", stamp(), "",
             f"Image size {imgsz}, batch {dp.train.batch_size}, this CPU; mAP by the pipeline's evaluator "
             f"(pycocotools) on the same {len(val)} val images. FP32 = our fine-tuned torch model / Ultralytics' FP32 "
             f"ONNX; INT8 = full-INT8 TFLite (LiteRT), both converted by the pipeline's onnx2tf path with "
             f"{cp.subset_size} calibration images. Training time: all training stages of each. Intervals: 95 % "
             f"bootstrap over the val images ({ep.bootstrap_resamples} resamples).", "",
             "| model | params | epochs | training time (s) | FP32 mAP50 [95% interval] | FP32 mAP50-95 | "
             "INT8 mAP50 [95% interval] | INT8 mAP50-95 | INT8 TFLite bytes | INT8 mAP50 per MB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['params']:,} | {r['epochs']} | {r['train_seconds']:.0f} | {ci(r['fp32'])} | "
              f"{r['fp32_map']:.3f} | {ci(r['int8'])} | {r['int8_map']:.3f} | {r['int8_bytes']:,} | "
              f"{r['int8_map50_per_mb']:.3f} |" for r in rows]
    lines += ["", "Ultralytics' own validation of its last epoch (mAP50, its letterboxing and NMS): "
                  f"{by_epochs['ultralytics_map50']:.3f} (by epochs), {by_time['ultralytics_map50']:.3f} (by time)."]
    write_report(args.out, lines, rows)


if __name__ == "__main__":
    main()
