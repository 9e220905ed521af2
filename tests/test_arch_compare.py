"""studies.arch_compare: the candidates it trains, its case parsing, its paired verdict and one tiny scheduled run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from pipeline.model.leafyolo import LeafYOLO
from pipeline.model.variants import VARIANTS
from studies import arch_compare as ac

TINY = Path(__file__).parent / "tiny_params.yaml"


def _params_convs(variant: str, nc: int = 80) -> tuple[int, int]:
    m = LeafYOLO(variant, nc)
    return sum(p.numel() for p in m.parameters()), sum(1 for x in m.modules() if isinstance(x, torch.nn.Conv2d))


def test_importing_the_study_leaves_the_library_variants_alone():
    assert not set(ac.CANDIDATES) & set(VARIANTS)  # registered only by the study's own processes


@pytest.mark.parametrize("variant", sorted(ac.CANDIDATES))
def test_candidates_have_fewer_layers_at_the_same_budget(variant, monkeypatch):
    monkeypatch.setitem(VARIANTS, variant, ac.CANDIDATES[variant])
    params, convs = _params_convs(variant)
    base_params, base_convs = _params_convs(ac.BASELINE)
    assert convs < base_convs * 0.8
    assert abs(params - base_params) / base_params < 0.01  # compared at (nearly) equal parameters
    assert params < 800_000


@pytest.mark.parametrize("text, message", [
    ("default:synthetic", "NAME:DATA:IMGSZ"),
    ("default:synthetic:100", "multiple of 32"),
    ("default:synthetic:128:0", "EPOCH_SCALE > 0"),
    ("default:synthetic:big", "IMGSZ must be an int"),
    ("bccd:/no/such/data.yaml:128", "is not a file"),
])
def test_bad_cases_are_refused_naming_the_case(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        ac.parse_case(text)


def test_a_case_parses():
    assert ac.parse_case("bccd:synthetic:192:2") == ac.Case("bccd", "synthetic", 192, 2.0)


def _results(base: list[float], other: list[float]) -> dict:
    out = {}
    for variant, maps in ((ac.BASELINE, base), ("leafyolo_uw", other)):
        for seed, m in enumerate(maps):
            out[f"c@128/seed{seed}/{variant}"] = {"status": "done", "variant": variant, "seed": seed, "map50": m,
                                                   "distill_map50": m}
    return out


def test_paired_difference_and_its_call():
    better = ac.paired(_results([0.40, 0.50, 0.45], [0.45, 0.56, 0.49]), "c@128", "leafyolo_uw")
    assert better["seeds"] == [0, 1, 2]
    assert better["diff"] == pytest.approx(0.05)
    assert ac._call(better, 0.01) == "better"  # every seed +0.04..+0.06: the t interval excludes 0
    worse = ac.paired(_results([0.40, 0.50, 0.45], [0.30, 0.41, 0.34]), "c@128", "leafyolo_uw")
    assert ac._call(worse, 0.01) == "lower"
    close = ac.paired(_results([0.40, 0.50, 0.45], [0.401, 0.499, 0.452]), "c@128", "leafyolo_uw")
    assert ac._call(close, 0.01) == "equal"  # within +-0.003 of the baseline on every seed
    noisy = ac.paired(_results([0.40, 0.50, 0.45], [0.30, 0.55, 0.47]), "c@128", "leafyolo_uw")
    assert ac._call(noisy, 0.01) == "undecided"  # a wide interval is not evidence of equality
    assert ac._call(noisy, 0.5) == "equal"
    assert ac._call(ac.paired(_results([0.4], [0.5]), "c@128", "leafyolo_uw"), 0.01) == "one seed only"
    assert ac.paired(_results([0.4], [0.5]), "other@128", "leafyolo_uw") is None


def test_report_keeps_only_a_candidate_shown_equal_or_better():
    deploy = {v: {"128": {"bytes": b, "bytes_per_param": b / 1e6, "latency_ms": ms, "convs": c, "params": 1}}
              for v, b, ms, c in ((ac.BASELINE, 1000, 1.0, 91), ("leafyolo_uw", 900, 0.9, 63))}
    variants = [ac.BASELINE, "leafyolo_uw"]
    close = ac.report(_results([0.40, 0.50, 0.45], [0.401, 0.499, 0.452]), deploy, variants, [128], 0.01)
    assert close[-1].endswith("-> keep")
    noisy = ac.report(_results([0.40, 0.50, 0.45], [0.30, 0.55, 0.47]), deploy, variants, [128], 0.01)
    assert "undecided on c@128" in noisy[-1] and noisy[-1].endswith("-> not kept")
    slower = {**deploy, "leafyolo_uw": {"128": {**deploy["leafyolo_uw"]["128"], "latency_ms": 1.1}}}
    assert ac.report(_results([0.40, 0.50, 0.45], [0.401, 0.499, 0.452]), slower, variants, [128],
                     0.01)[-1].endswith("-> not kept")


def test_tiny_run_trains_every_variant_after_its_teacher_and_resumes(tmp_path):
    cases = [ac.parse_case("default:synthetic:64")]
    data = ac.prepare_data(cases, str(TINY), tmp_path)
    jobs = ac.make_jobs(cases, [0], [ac.BASELINE, "leafyolo_uw"], tmp_path, str(TINY), data, workers=0)
    assert [j["variant"] for j in jobs] == ["teacher", ac.BASELINE, "leafyolo_uw"]
    results_path = tmp_path / "results.json"
    results = ac.schedule(jobs, results_path, n_parallel=2, budget_s=600, threads=1)
    assert json.loads(results_path.read_text()) == results
    for variant in (ac.BASELINE, "leafyolo_uw"):
        r = results[f"default@64/seed0/{variant}"]
        assert r["status"] == "done", r.get("log_tail")
        assert 0.25 < 1 - r["params_pruned"] / r["params"] < 0.35  # prune.sparsity 0.3 of tiny_params
        assert 0.0 <= r["map50"] <= 1.0
    assert Path(jobs[0]["teacher"]).is_file()
    again = ac.schedule(jobs, results_path, n_parallel=2, budget_s=600, threads=1)
    assert again == results  # finished runs are not run again


def test_budget_stops_before_starting(tmp_path):
    cases = [ac.parse_case("default:synthetic:64")]
    jobs = ac.make_jobs(cases, [0], [ac.BASELINE], tmp_path, str(TINY), {"synthetic": "unused"}, workers=0)
    results = ac.schedule(jobs, tmp_path / "r.json", n_parallel=1, budget_s=-1, threads=1)
    assert not any(r.get("status") == "done" for r in results.values())


def test_report_names_a_missing_results_file(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "r.md"
    proc = subprocess.run([sys.executable, "-m", "studies.arch_compare", "report", "--results", str(tmp_path / "no.json"),
                           "--out", str(out)], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and f"--results {tmp_path / 'no.json'} is not a file" in proc.stderr
    assert not out.exists()


def test_a_recipe_without_a_teacher_trains_the_variants_alone(tmp_path):
    """The default recipe (teacher.variant none, alpha 0) schedules no teacher: each variant starts at once and
    trains alone; issue 26's latency candidates are buildable here by name."""
    from tests.stage_runner import write_params

    alone = write_params(tmp_path, teacher={"variant": "none"}, distill={"alpha": 0.0}, finetune={"alpha": 0.0})
    assert ac.needs_teacher(str(TINY)) and not ac.needs_teacher(str(alone))
    cases = [ac.parse_case("default:synthetic:64")]
    data = ac.prepare_data(cases, str(alone), tmp_path)
    jobs = ac.make_jobs(cases, [0], [ac.BASELINE], tmp_path, str(alone), data, workers=0, teacher=False)
    assert [(j["variant"], j["needs"], j["teacher"]) for j in jobs] == [(ac.BASELINE, None, None)]
    results = ac.schedule(jobs, tmp_path / "r.json", n_parallel=1, budget_s=600, threads=1)
    r = results[f"default@64/seed0/{ac.BASELINE}"]
    assert r["status"] == "done", r.get("log_tail")
    assert 0.0 <= r["map50"] <= 1.0 and r["params_pruned"] < r["params"]
    assert not (tmp_path / "teachers").exists()
