"""The shape of the code: dvc.yaml's code deps are exactly what each stage imports, no import cycles, light
package __init__ files, and pipeline/ grouped by concern (no loose modules)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools.import_graph import (
    LAYERS,
    REPO,
    declared_code_deps,
    expected_code_deps,
    find_cycle,
    layer_violations,
    stage_modules,
    unresolved_imports,
)


@pytest.mark.parametrize("stage", sorted(stage_modules()))
def test_dvc_yaml_code_deps_are_the_stage_import_closure(stage):
    expected = expected_code_deps(stage)
    assert declared_code_deps(stage) == expected, (
        f"dvc.yaml stage {stage!r}: code deps differ from what stages/{stage}.py imports; run "
        f"`python -m tools.import_graph --write` (expected {expected})")


def test_every_import_resolves_inside_this_checkout():
    """No import works only through an installed (editable) copy of another checkout of the project."""
    assert unresolved_imports() == []


def test_no_import_cycles():
    cycle = find_cycle()
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_pipeline_packages_import_only_from_lower_layers():
    """Imports run one way: shared helpers (common/) at the bottom, stage plumbing (stage/) at the top."""
    assert layer_violations() == [], f"imports against the layer order {LAYERS}"
    packages = sorted(p.name for p in (REPO / "pipeline").iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(LAYERS)


def test_pipeline_is_grouped_by_concern():
    loose = sorted(p.name for p in (REPO / "pipeline").glob("*.py") if p.name != "__init__.py")
    assert not loose, f"modules directly under pipeline/: {loose}; put each in the subpackage of its concern"


@pytest.mark.parametrize("module, heavy", [("stages.gate", ("torch", "onnx", "tensorflow")),
                                           ("pipeline.data.data_yaml", ("torch",)),
                                           ("pipeline.evaluate.results", ("torch", "numpy"))])
def test_small_modules_import_only_what_they_use(module, heavy):
    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"importing {module} pulled in {out.stdout.strip()}"
