"""Every DVC stage, run with its exact dvc.yaml command on a tiny params set in a scratch folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.io.checkpoint import read_checkpoint
from tests.stage_runner import run_stage, write_params

pytestmark = pytest.mark.slow


def read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def chain(tiny_chain) -> Path:
    return tiny_chain


def test_every_stage_records_its_own_wall_time(chain):
    walls = read(chain / "walls.json")
    for stage, wall in walls.items():
        name = "report" if stage == "data" else "metrics"
        seconds = read(chain / f"artifacts/{stage}/{name}.json")["seconds"]
        # from process start (imports included) to the metrics write: more than the imports, at most the wall
        assert 0.5 < seconds <= wall + 0.5, (stage, seconds, wall)


def test_a_process_age_is_read_to_the_clock_tick():
    # psutil's create_time() rests on /proc/stat's whole-second boot time: its ages were up to ~1 s too long
    code = "import time; time.sleep(0.3); from pipeline.stage.steps import process_seconds; print(process_seconds())"
    t0 = time.time()
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                               cwd=Path(__file__).parents[1]).stdout)
    wall = time.time() - t0
    assert 0.3 <= age <= wall + 0.02, (age, wall)  # a 10 ms tick: the start may read up to one tick early


def test_data_stage_writes_dataset_and_report(chain):
    report = read(chain / "artifacts/data/report.json")
    assert report["splits"]["train"]["images"] == 16 and report["splits"]["val"]["images"] == 8
    assert sum(report["splits"]["train"]["boxes_per_class"].values()) == report["splits"]["train"]["boxes"] > 0
    assert (chain / "artifacts/data/dataset/data.yaml").is_file()


def test_training_stages_write_checkpoints_metrics_and_logs(chain):
    for stage in ("teacher", "distill", "finetune"):
        metrics = read(chain / f"artifacts/{stage}/metrics.json")
        assert {"val/map50", "val/map", "params", "images_per_second", "train_epochs", "train_steps"} <= set(metrics)
        assert metrics["train_steps"] == metrics["train_epochs"] * 2  # 16 images at batch 8, tiny_params' epochs
        assert (chain / f"artifacts/{stage}/live/plots/metrics/train/loss.tsv").is_file()
        assert not (chain / f"artifacts/.resume/{stage}/last.pt").exists()
    distill = read(chain / "artifacts/distill/metrics.json")
    assert distill["train/kd_feat"] > 0
    assert 0 <= distill["teacher/map50"] <= 1 and 0 <= distill["teacher/map"] <= distill["teacher/map50"]


def test_prune_stage_lands_on_the_sparsity(chain):
    m = read(chain / "artifacts/prune/metrics.json")
    assert m["params_after"] < m["params_before"] and m["flops_after"] < m["flops_before"]
    assert abs(m["achieved_sparsity"] - 0.3) <= 0.02
    ckpt = read_checkpoint(chain / "artifacts/prune/model.pt")
    assert ckpt["pruning_history"]


def test_export_stages(chain):
    onnx_m = read(chain / "artifacts/onnx/metrics.json")
    assert max(onnx_m["parity"].values()) < 1e-4
    assert (chain / "artifacts/onnx/model_fp16.onnx").stat().st_size < (chain / "artifacts/onnx/model_fp32.onnx").stat().st_size
    assert read(chain / "artifacts/calibrate/metrics.json")["subset_size"] == 8
    tfl = chain / "artifacts/tflite/model_int8.tflite"
    assert 0 < tfl.stat().st_size < 1_000_000
    tm = read(chain / "artifacts/tflite/metrics.json")  # the size report: every byte accounted for, names stripped
    assert tm["size_bytes"] == tfl.stat().st_size == sum(tm["size_breakdown"]["parts"].values()) < tm["converted_bytes"]
    assert tm["size_breakdown"]["parts"]["names"] == 0 and tm["stripped"]["names"] > 0
    # class names travel with every file, from the checkpoint through the ONNX files into the TFLite and its C header
    import yaml

    from pipeline.io.file_metadata import read_onnx_metadata, read_tflite_metadata

    names = yaml.safe_load((chain / "artifacts/data/dataset/data.yaml").read_text())["names"]
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else names
    for onnx_file in ("onnx/model_fp32.onnx", "onnx/model_fp16.onnx", "calibrate/model_int8.onnx"):
        meta = read_onnx_metadata(chain / "artifacts" / onnx_file)
        assert meta["names"] == names and meta["imgsz"] == 64 and meta["variant"] == "leafyolo_u", onnx_file
    meta = read_tflite_metadata(tfl)
    assert meta["names"] == names and meta["input"]["zero_point"] == -128
    assert meta["outputs"]["scores"]["shape"][2] == len(names)
    # the firmware pair: the same bytes, and the arena the stage measured under TFLM
    header = (chain / "artifacts/tflite/model_data.h").read_text()
    assert f"leafyolo_model_arena_bytes = {tm['tflm_arena_bytes']};" in header
    assert f"leafyolo_model_len = {tfl.stat().st_size};" in (chain / "artifacts/tflite/model_data.cc").read_text()
    assert "leafyolo_model_names[" in header and all(f'"{n}"' in header for n in names)


def test_predict_on_the_int8_tflite_names_its_detections(chain):
    """`leafyolo predict --model model_int8.tflite` draws class names, not ids: the file carries them."""
    from leafyolo import LEAFYOLO

    model = LEAFYOLO(str(chain / "artifacts/tflite/model_int8.tflite"))
    names = read(chain / "artifacts/data/report.json")["names"]
    image = sorted((chain / "artifacts/data/dataset/images/val").glob("*"))[0]
    detections = model.predict(str(image), conf=0.0)[0]
    assert model.names == names and len(detections.classes) > 0
    assert detections.labels and set(detections.labels) <= set(names)


def test_evaluate_stage_covers_every_artifact(chain):
    m = read(chain / "artifacts/evaluate/metrics.json")
    assert set(m["artifacts"]) == {"distill", "prune", "finetune", "onnx_fp32", "onnx_fp16", "onnx_int8", "tflite_int8"}
    for figures in m["artifacts"].values():
        assert 0 <= figures["map50"] <= 1 and figures["size_bytes"] > 0 and figures["latency_ms_median"] > 0
    # FP32 ONNX and the torch model it came from score the same
    assert m["artifacts"]["onnx_fp32"]["map50"] == pytest.approx(m["artifacts"]["finetune"]["map50"], abs=0.02)
    size_plot = read(chain / "artifacts/evaluate/map_vs_size.json")
    assert len(size_plot) == 7 and {"size_bytes", "map50"} <= set(size_plot[0])
    assert len(read(chain / "artifacts/evaluate/pr_curve.json")) == 101
    # the INT8 TFLite under TFLM: every val image, bit-exact with LiteRT's reference kernels, the stage's arena
    micro = m["tflm"]
    assert micro["images"] == 8 and 0 <= micro["map50"] <= 1 and micro["litert_reference"]["identical"] is True
    assert micro["arena_bytes"] == m["final"]["tflm_arena_bytes"] == read(chain / "artifacts/tflite/metrics.json")[
        "tflm_arena_bytes"]


def test_gate_fails_for_a_one_epoch_model_and_says_why(chain, tmp_path):
    work = tmp_path / "gate"
    shutil.copytree(chain / "artifacts", work / "artifacts")
    write_params(work)
    proc = run_stage("gate", work)
    assert proc.returncode != 0
    verdict = read(work / "artifacts/gate/gate.json")  # written before the exit
    assert verdict["passed"] is False and verdict["checks"]["map50"]["passed"] is False
    assert "map50" in proc.stderr and "gate.min_map50: >= 0.3" in proc.stderr


def test_gate_passes_within_budgets(chain, tmp_path):
    work = tmp_path / "gate"
    (work / "artifacts/evaluate").mkdir(parents=True)
    shutil.copy(chain / "artifacts/evaluate/metrics.json", work / "artifacts/evaluate/metrics.json")
    write_params(work, gate={"min_map50": 0.0, "max_int8_drop": 1.0, "min_int8_retention": 0.0})
    proc = run_stage("gate", work)
    assert proc.returncode == 0, proc.stderr
    assert read(work / "artifacts/gate/gate.json")["passed"] is True


def test_gate_size_budget_names_the_file_size(chain, tmp_path):
    work = tmp_path / "gate"
    (work / "artifacts/evaluate").mkdir(parents=True)
    shutil.copy(chain / "artifacts/evaluate/metrics.json", work / "artifacts/evaluate/metrics.json")
    write_params(work, gate={"max_bytes": 1000, "min_map50": 0.0, "max_int8_drop": 1.0, "min_int8_retention": 0.0})
    proc = run_stage("gate", work)
    assert proc.returncode != 0 and "size_bytes" in proc.stderr and "gate.max_bytes: <= 1,000" in proc.stderr


def test_gate_ram_budget_names_the_tflm_arena(chain, tmp_path):
    work = tmp_path / "gate"
    (work / "artifacts/evaluate").mkdir(parents=True)
    shutil.copy(chain / "artifacts/evaluate/metrics.json", work / "artifacts/evaluate/metrics.json")
    arena = read(work / "artifacts/evaluate/metrics.json")["final"]["tflm_arena_bytes"]
    loose = {"min_map50": 0.0, "max_int8_drop": 1.0, "min_int8_retention": 0.0}
    write_params(work, gate={**loose, "max_arena_bytes": arena - 1})
    proc = run_stage("gate", work)
    assert proc.returncode != 0 and f"tflm_arena_bytes = {arena:,} (gate.max_arena_bytes: <= {arena - 1:,})" in proc.stderr
    write_params(work, gate={**loose, "max_arena_bytes": arena})
    assert run_stage("gate", work).returncode == 0


@pytest.mark.parametrize("stage, section, values, key", [
    ("prune", "prune", {"sparsity": 1.2}, "prune.sparsity"),
    ("prune", "prune", {"sparsity": -0.1}, "prune.sparsity"),
    ("finetune", "finetune", {"train": {"epochs": 0}}, "finetune.train.epochs"),
    ("calibrate", "calibrate", {"subset_size": 0}, "calibrate.subset_size"),
    ("teacher", "teacher", {"variant": "leafyolo_xl"}, "teacher.variant"),
])
def test_bad_params_stop_the_stage_naming_the_key_and_keep_artifacts(chain, tmp_path, stage, section, values, key):
    work = tmp_path / "bad"
    shutil.copytree(chain / "artifacts", work / "artifacts")
    write_params(work, **{section: values})
    outputs = {p: p.read_bytes() for p in (work / "artifacts").rglob("*.pt")}
    proc = run_stage(stage, work)
    assert proc.returncode != 0 and key in proc.stderr, proc.stderr[-2000:]
    assert all(p.read_bytes() == data for p, data in outputs.items())


def test_missing_and_corrupt_checkpoints_are_named(chain, tmp_path):
    work = tmp_path / "ckpt"
    shutil.copytree(chain / "artifacts", work / "artifacts")
    write_params(work)
    (work / "artifacts/distill/model.pt").write_bytes(b"not a checkpoint")
    proc = run_stage("prune", work)
    assert proc.returncode != 0 and "artifacts/distill/model.pt" in proc.stderr and "corrupt" in proc.stderr
    (work / "artifacts/distill/model.pt").unlink()
    proc = run_stage("prune", work)
    assert proc.returncode != 0 and "checkpoint not found: artifacts/distill/model.pt" in proc.stderr


def test_results_table_reads_the_run(chain):
    from bench.results_table import markdown

    text = markdown(chain)
    size = read(chain / "artifacts/evaluate/metrics.json")["artifacts"]["tflite_int8"]["size_bytes"]
    assert f"{size:,}" in text and "TFLite full INT8" in text
    arena = read(chain / "artifacts/evaluate/metrics.json")["tflm"]["arena_bytes"]
    assert f"tensor arena {arena:,} bytes, bit-identical to LiteRT's reference kernels" in text


@pytest.mark.parametrize("quant_type", ["per-tensor", "per-channel"])
def test_prune_to_a_byte_budget_lands_just_under_it(chain, tmp_path, quant_type):
    """`prune.target_bytes` on the tiny chain's student: prune, fine-tune, calibrate, onnx and tflite stages run as
    dvc.yaml runs them, and the final INT8 file is at most the target and at most 3 % under it, with either
    weight-scale granularity (each has its own bytes model)."""
    work, target = tmp_path / "bytes", 600_000
    for sub in ("data", "distill"):
        shutil.copytree(chain / "artifacts" / sub, work / "artifacts" / sub)
    write_params(work, prune={"target_bytes": target}, tflite={"quant_type": quant_type})
    for stage in ("prune", "finetune", "calibrate", "onnx", "tflite"):
        proc = run_stage(stage, work)
        assert proc.returncode == 0, f"{stage}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    pm, tm = read(work / "artifacts/prune/metrics.json"), read(work / "artifacts/tflite/metrics.json")
    assert pm["target_bytes"] == target and pm["target_sparsity"] is None and pm["achieved_sparsity"] > 0.2
    size = (work / "artifacts/tflite/model_int8.tflite").stat().st_size
    assert 0.97 * target <= size <= target and tm["size_bytes"] == size and tm["target_fill"] == size / target
    assert tm["onnx2tf_options"]["quant_type"] == quant_type


def test_an_unreachable_byte_budget_fails_before_pruning(chain, tmp_path):
    work = tmp_path / "bytes"
    shutil.copytree(chain / "artifacts" / "distill", work / "artifacts" / "distill")
    write_params(work, prune={"target_bytes": 30_000})
    proc = run_stage("prune", work)
    assert proc.returncode != 0 and "prune.target_bytes=30,000 is out of reach" in proc.stderr
    assert not (work / "artifacts/prune/model.pt").exists()


def conv_out_channels(tflite_path: Path) -> list[int]:
    """Output channels of every CONV_2D and DEPTHWISE_CONV_2D of a .tflite file, from its weight shapes."""
    from pipeline.io.tflite_file import read_model, schema

    ops = schema().BuiltinOperator
    model = read_model(tflite_path)
    graph = model.subgraphs[0]
    counts = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = max(code.builtinCode, code.deprecatedBuiltinCode)
        if kind == ops.CONV_2D:
            counts.append(int(graph.tensors[op.inputs[1]].shape[0]))  # [out, kh, kw, in]
        elif kind == ops.DEPTHWISE_CONV_2D:
            counts.append(int(graph.tensors[op.inputs[1]].shape[3]))  # [1, kh, kw, out]
    return counts


def test_prune_round_to_gives_the_exported_file_channel_counts_in_eights(chain, tmp_path):
    """`prune.round_to: 8`: every convolution of the INT8 TFLite has a multiple of 8 output channels, but the head's
    class and box outputs (nc and 4, never pruned); with round_to 1 (tiny_params) some count is not."""
    nc = yaml.safe_load((chain / "artifacts/data/dataset/data.yaml").read_text())["nc"]
    head_outputs = {nc, 4}  # the class scores and the box distances
    assert any(c % 8 and c not in head_outputs for c in conv_out_channels(chain / "artifacts/tflite/model_int8.tflite"))
    work = tmp_path / "round_to"
    shutil.copytree(chain / "artifacts", work / "artifacts")
    write_params(work, prune={"round_to": 8})
    for stage in ("prune", "finetune", "calibrate", "onnx", "tflite"):
        proc = run_stage(stage, work)
        assert proc.returncode == 0, f"{stage}: {proc.stderr[-2000:]}"
    assert read(work / "artifacts/prune/metrics.json")["round_to"] == 8
    counts = conv_out_channels(work / "artifacts/tflite/model_int8.tflite")
    assert len(counts) > 50 and {c for c in counts if c % 8} <= head_outputs, sorted(set(counts))


def test_prune_round_to_out_of_range_is_named(chain, tmp_path):
    work = tmp_path / "bad_round_to"
    shutil.copytree(chain / "artifacts", work / "artifacts")
    write_params(work, prune={"round_to": 0})
    proc = run_stage("prune", work)
    assert proc.returncode != 0 and "prune.round_to must be in [1, 64]" in proc.stderr, proc.stderr[-2000:]
