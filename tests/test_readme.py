"""README.md is for users and its figures come from the committed files they describe (bench/readme.py)."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from bench.readme import BLOCK, documents, hand_typed, render, stale_blocks
from tests.simple_data import write_simple_dataset
from tests.stage_runner import REPO, merge, run_stage, write_params

README = REPO / "README.md"


def section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}", 1)[1].split("\n## ", 1)[0]


def test_every_generated_block_matches_its_source():
    for path in documents():
        assert stale_blocks(path.read_text()) == [], f"{path.name}: run `python -m bench.readme`"


def test_a_changed_figure_fails_the_check():
    text = README.read_text()
    assert len(BLOCK.findall(text)) >= 8
    size = re.search(r"\*\*([\d,]+)-byte\*\*", text).group(1)  # the headline's INT8 TFLite size
    edited = text.replace(f"**{size}-byte**", f"**{int(size.replace(',', '')) + 1:,}-byte**")
    assert stale_blocks(edited) == ["headline"]
    assert render(edited) == text  # regenerating puts the source's figure back


def test_no_measured_number_is_typed_by_hand():
    for path in (README, REPO / "docs" / "design.md", REPO / "docs" / "reading-the-numbers.md"):
        assert hand_typed(path.read_text()) == [], f"{path.name}: put these figures in a generated block"
    assert hand_typed("the file is 605,304 bytes") == ["605,304"]  # the check sees a typed figure


def test_a_newcomer_finds_the_commands_results_own_data_and_gpu_early():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250
    at = {h: next(i for i, line in enumerate(lines) if line == f"## {h}")
          for h in ("The two commands", "What you get", "Your own dataset", "Full scale on a GPU")}
    assert list(at.values()) == sorted(at.values()) and at["The two commands"] < 20 and at["Full scale on a GPU"] < 130
    assert "bash scripts/run.sh" in lines[at["The two commands"] + 3]


def test_every_link_into_the_repository_exists():
    for path in documents():
        for target in re.findall(r"\]\(([^)#]+)\)", path.read_text()):
            if not target.startswith("http"):
                assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def full_scale_overrides(data_yaml, data_root, teacher: bool = False) -> dict:
    """The README's GPU command as params overrides, its example paths replaced by a dataset made here; with
    `teacher`, plus the flags its "With a teacher, add" line gives."""
    text = section(README.read_text(), "Full scale on a GPU")
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    argv = shlex.split(block.replace("\\\n", " "))
    if teacher:
        argv += shlex.split(re.search(r"With a teacher, add `([^`]*)`", text).group(1))
    assert argv[:3] == ["dvc", "exp", "run"]
    overrides: dict = {}
    for flag, assignment in zip(argv[3::2], argv[4::2]):
        assert flag == "-S", argv
        key, value = assignment.split("=", 1)
        value = value.replace("/data/visdrone/my_data.yaml", str(data_yaml)).replace("/data/visdrone", str(data_root))
        node = overrides
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return overrides


def test_the_full_scale_command_passes_the_data_stage_checks(tmp_path):
    """The data stage parses every section and checks them against the data before any training: the README's GPU
    command, on a dataset of its own (the settings are only checked, nothing trains)."""
    data_yaml = write_simple_dataset(tmp_path / "my_data", n_images=6, imgsz=64)
    for teacher in (False, True):  # on params.yaml's defaults (no teacher), and with the teacher line's flags
        overrides = full_scale_overrides(data_yaml, data_yaml.parent, teacher)
        assert overrides["distill"]["train"]["epochs"] == 300 and overrides["data"]["dep"] == str(data_yaml.parent)
        assert overrides.get("teacher", {}).get("variant") == ("leafyolo_s" if teacher else None)
        (tmp_path / "run").mkdir(exist_ok=True)
        params = merge(yaml.safe_load((REPO / "params.yaml").read_text()), overrides)
        (tmp_path / "run" / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        proc = run_stage("data", tmp_path / "run")
        assert proc.returncode == 0, proc.stderr[-3000:]
    del overrides["data"]["dep"]  # the mistake the README's command once had: the data stage names it
    write_params(tmp_path / "bad", **overrides)
    proc = run_stage("data", tmp_path / "bad")
    assert proc.returncode != 0 and "data.dep" in proc.stderr


@pytest.mark.parametrize("heading", ["Params that matter (`params.yaml`)", "Python API and CLI"])
def test_sections_the_other_readme_tests_read_are_there(heading):
    assert section(README.read_text(), heading).strip()


def test_reports_from_before_the_head_fix_are_marked():
    """A report made on the model before the head fix is marked in README and benchmarks as such, and only then."""
    import subprocess

    from bench.stamp import HEAD_FIX, STAMP, older_than_head_fix

    if subprocess.run(["git", "cat-file", "-e", HEAD_FIX], cwd=REPO, capture_output=True).returncode:
        pytest.skip(f"this checkout's history does not reach {HEAD_FIX}")
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=REPO, capture_output=True, text=True)
    assert older_than_head_fix(first.stdout.split()[0]) and not older_than_head_fix(HEAD_FIX)
    reports = sorted((REPO / "bench" / "results").glob("*.md"))
    old = [p.stem for p in reports if older_than_head_fix(STAMP.search(p.read_text())["commit"])]
    benchmarks = (REPO / "docs" / "benchmarks.md").read_text()
    assert ("before its per-level head BatchNorms" in benchmarks) == bool(old), old
    for name in ("web_latency", "tflm_arena", "deploy_compare"):  # the Deploy section's blocks
        if name in old:
            assert "not re-run yet" in section(README.read_text(), "Deploy"), name


def test_default_run_reports_from_before_the_student_alone_default_are_marked():
    """A report of the default run made on the chain with a teacher (the sparsity sweep before it was re-run) is
    marked in README and benchmarks as such, and only then."""
    import subprocess

    from bench.stamp import RECIPE_FIX, RECIPE_REPORTS, STAMP, stale

    if subprocess.run(["git", "cat-file", "-e", RECIPE_FIX], cwd=REPO, capture_output=True).returncode:
        pytest.skip(f"this checkout's history does not reach {RECIPE_FIX}")
    def recipe(name: str, commit: str) -> list[str]:
        return [n for n in stale(name, commit) if "student-alone" in n]

    assert recipe(RECIPE_REPORTS[0], "8baeb13") and not recipe(RECIPE_REPORTS[0], RECIPE_FIX)
    assert not recipe("deploy_compare", "8baeb13")  # architecture reports do not depend on the training recipe
    marked = [name for name in RECIPE_REPORTS
              if recipe(name, STAMP.search((REPO / "bench" / "results" / f"{name}.md").read_text())["commit"])]
    benchmarks = (REPO / "docs" / "benchmarks.md").read_text()
    assert ("before the student-alone default" in benchmarks) == bool(marked), marked
    assert ("before the student-alone default" in section(README.read_text(), "Compare trade-offs")) == bool(marked)


def test_reports_from_before_the_pad_rewrite_are_marked():
    """Reports with TFLite bytes, arenas or LiteRT times made before graph_prep's rewrite 4 are marked stale, and only
    those; reports of other things (web latency of ONNX files) are not."""
    import subprocess

    from bench.stamp import PAD_FIX, PAD_REPORTS, stale

    if subprocess.run(["git", "cat-file", "-e", PAD_FIX], cwd=REPO, capture_output=True).returncode:
        pytest.skip(f"this checkout's history does not reach {PAD_FIX}")
    before = subprocess.run(["git", "rev-parse", "--short", f"{PAD_FIX}~1"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    assert any("explicit PAD" in n for n in stale("deploy_compare", before))
    assert not any("explicit PAD" in n for n in stale("deploy_compare", PAD_FIX))
    assert not any("explicit PAD" in n for n in stale("web_latency", before))
    assert {"deploy_compare", "tflm_arena", "op_profile"} <= set(PAD_REPORTS)


def test_the_bccd_sentence_names_the_time_matched_peer_when_the_report_has_one(monkeypatch):
    """Reports with a third row (YOLOv8n trained for our chain's time) say its score; the committed report's image
    size and val count come from its text, not from the sentence."""
    import json

    import bench.readme as readme

    rows = json.loads((REPO / "bench/results/accuracy_compare.json").read_text())[:2]
    monkeypatch.setattr(readme, "report", lambda name: (rows, "STAMP"))
    two = readme.bccd(REPO)
    text = (REPO / "bench/results/accuracy_compare.md").read_text()
    imgsz = re.search(r"Image size (\d+)", text)[1]
    assert f"{imgsz} px" in two and "for as long" not in two
    monkeypatch.setattr(readme, "report", lambda name: ([*rows, {**rows[1], "int8_map50": 0.4567}], "STAMP"))
    assert "and 0.457 for as long" in readme.bccd(REPO)
