"""The default gate (params.yaml's `gate` section, set from the seed study) against real figures: the committed
default run passes; a model 25 % worse, an INT8 file that loses more than the allowed fraction of the FP32 mAP50,
and the tiny chain's one-epoch models all fail, each naming the budget it broke."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.config.params import from_dict
from pipeline.config.stages import GateParams
from pipeline.evaluate.gate import check_budgets, failure_message
from tests.stage_runner import REPO, run_stage, write_params

DEFAULT_GATE = yaml.safe_load((REPO / "params.yaml").read_text())["gate"]
COMMITTED = json.loads((REPO / "artifacts/evaluate/metrics.json").read_text())["final"]


def gate(final: dict) -> dict:
    return check_budgets(final, from_dict(GateParams, DEFAULT_GATE, "gate", source="params.yaml"))


def test_the_committed_default_run_passes_the_default_gate():
    verdict = gate(COMMITTED)
    assert verdict["passed"], failure_message(verdict)


def test_a_model_25_percent_worse_fails_naming_the_map_floor():
    worse = {**COMMITTED, "map50": COMMITTED["map50"] * 0.75, "fp32_map50": COMMITTED["fp32_map50"] * 0.75}
    worse["int8_drop_map50"] = worse["fp32_map50"] - worse["map50"]
    worse["int8_retention"] = worse["map50"] / worse["fp32_map50"]
    verdict = gate(worse)
    assert not verdict["passed"] and not verdict["checks"]["map50"]["passed"]
    assert "gate.min_map50" in failure_message(verdict)


def test_an_int8_file_keeping_too_little_of_the_fp32_map_fails_naming_the_retention_floor():
    lossy = copy.deepcopy(COMMITTED)
    lossy["map50"] = COMMITTED["fp32_map50"] * (DEFAULT_GATE["min_int8_retention"] - 0.02)
    lossy["int8_drop_map50"] = COMMITTED["fp32_map50"] - lossy["map50"]
    lossy["int8_retention"] = lossy["map50"] / COMMITTED["fp32_map50"]
    verdict = gate(lossy)
    assert not verdict["checks"]["int8_retention"]["passed"]
    assert "gate.min_int8_retention" in failure_message(verdict)


def test_a_model_needing_more_ram_than_the_budget_fails_naming_it():
    hungry = {**COMMITTED, "tflm_arena_bytes": DEFAULT_GATE["max_arena_bytes"] + 16}
    verdict = gate(hungry)
    assert not verdict["passed"] and not verdict["checks"]["tflm_arena_bytes"]["passed"]
    assert "gate.max_arena_bytes" in failure_message(verdict)


def test_the_ram_budget_fits_an_esp32_s3_and_is_set_from_the_measurement():
    """Under the 512 KiB of SRAM of common ESP32-S3 boards, and at most 15 % above the default model's arena, so a
    model that grows by more than that fails."""
    assert COMMITTED["tflm_arena_bytes"] <= DEFAULT_GATE["max_arena_bytes"] <= 512 * 1024
    assert DEFAULT_GATE["max_arena_bytes"] <= 1.15 * COMMITTED["tflm_arena_bytes"]


def test_the_size_budget_is_set_from_the_measurement():
    """At most 5 % above the default file, so a model (or a conversion) that grows by more than that fails, naming
    the budget; and under the project's 1,000,000-byte ceiling."""
    assert COMMITTED["size_bytes"] <= DEFAULT_GATE["max_bytes"] <= min(1.05 * COMMITTED["size_bytes"], 1_000_000)
    bigger = {**COMMITTED, "size_bytes": int(1.05 * COMMITTED["size_bytes"]) + 1}
    verdict = gate(bigger)
    assert not verdict["passed"] and "gate.max_bytes" in failure_message(verdict)


def test_the_default_floor_bites_above_the_drop_budget():
    """The absolute floor is not a formality: it lies within 25 % of the default run's own mAP50."""
    assert DEFAULT_GATE["min_map50"] > 0.75 * COMMITTED["map50"]


@pytest.mark.parametrize("damage", ["one_epoch", "no_scores"])
def test_damaged_models_fail_the_default_gate_through_the_stage(tiny_chain, tmp_path, damage):
    """The gate stage with the default budgets on the tiny chain's one-epoch models, and on an evaluation whose
    INT8 file lost its detections (every score zeroed), exits non-zero naming the budget."""
    work = tmp_path / damage
    shutil.copytree(tiny_chain / "artifacts", work / "artifacts")
    write_params(work, gate=DEFAULT_GATE)
    metrics_path = work / "artifacts/evaluate/metrics.json"
    if damage == "no_scores":
        metrics = json.loads(metrics_path.read_text())
        final = metrics["final"]
        final.update(fp32_map50=COMMITTED["fp32_map50"], map50=0.0, int8_drop_map50=COMMITTED["fp32_map50"],
                     int8_retention=0.0)
        metrics_path.write_text(json.dumps(metrics))
    proc = run_stage("gate", work)
    assert proc.returncode != 0
    assert "gate.min_map50" in proc.stderr
    if damage == "no_scores":
        assert "gate.min_int8_retention" in proc.stderr and "gate.max_int8_drop" in proc.stderr
    assert json.loads((work / "artifacts/gate/gate.json").read_text())["passed"] is False


def test_gate_refuses_metrics_without_the_figures_it_checks(tmp_path):
    work = tmp_path / "old"
    (work / "artifacts/evaluate").mkdir(parents=True)
    (work / "artifacts/evaluate/metrics.json").write_text(json.dumps({"final": {"map50": 0.5, "size_bytes": 10}}))
    write_params(work)
    proc = run_stage("gate", work)
    assert proc.returncode != 0 and "final.int8_drop_map50" in proc.stderr and "dvc repro evaluate" in proc.stderr
    assert not Path(work / "artifacts/gate/gate.json").exists()
