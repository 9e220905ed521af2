"""The image plots (pipeline/evaluate/figures.py, stage `plots`) and `dvc plots show` offline: the page DVC writes
with this repo's template loads vega from web/node_modules, and (marker `browser`) renders in headless Chromium
with every request outside file:// blocked."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from pipeline.config.stages import PlotsParams
from pipeline.evaluate.figures import predictions_grid, size_map_chart
from tests.stage_runner import REPO, run_stage, write_params

PARAMS = PlotsParams(n_images=3, columns=2, conf_thres=0.25, iou_thres=0.45)
PNG = b"\x89PNG\r\n\x1a\n"
DVC = shutil.which("dvc", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> dict:
    """An untrained leafyolo_u exported to FP32 ONNX at 64 px, and a 2-class dataset of 4 images."""
    from pipeline.export.onnx_export import export_onnx
    from pipeline.model.leafyolo import LeafYOLO
    from tests.simple_data import write_simple_dataset

    root = tmp_path_factory.mktemp("plots_model")
    export_onnx(LeafYOLO("leafyolo_u", nc=2), root / "model.onnx", 64)
    return {"model": root / "model.onnx", "data": write_simple_dataset(root / "data", n_images=4, imgsz=64)}


def size_inputs(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    points = [{"artifact": a, "size_bytes": b, "map50": m, "map": m / 2}
              for a, b, m in (("finetune", 2_300_000, 0.45), ("onnx_fp16", 1_140_000, 0.449), ("tflite_int8", 750_000, 0.44))]
    metrics = {"artifacts": {p["artifact"]: {"map50_ci_low": p["map50"] - 0.01, "map50_ci_high": p["map50"] + 0.01}
                             for p in points[1:]}}  # finetune without an interval: drawn as a bare point
    (folder / "map_vs_size.json").write_text(json.dumps(points))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder / "map_vs_size.json", folder / "metrics.json"


def test_size_chart_is_a_deterministic_png(tmp_path):
    size_plot, metrics = size_inputs(tmp_path)
    info = size_map_chart(size_plot, metrics, tmp_path / "a.png")
    size_map_chart(size_plot, metrics, tmp_path / "b.png")
    data = (tmp_path / "a.png").read_bytes()
    assert data[:8] == PNG and info == {"points": 3, "bytes": len(data)}
    assert data == (tmp_path / "b.png").read_bytes() and b"Software" not in data
    assert Image.open(tmp_path / "a.png").size == (750, 450)


def test_size_chart_names_a_missing_or_malformed_input(tmp_path):
    size_plot, metrics = size_inputs(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere.json: evaluate metrics not found"):
        size_map_chart(size_plot, tmp_path / "nowhere.json", tmp_path / "c.png")
    size_plot.write_text(json.dumps([{"artifact": "x", "map50": 0.4}]))
    with pytest.raises(ValueError, match=r"record 0 lacks \['size_bytes'\]"):
        size_map_chart(size_plot, metrics, tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_predictions_grid_draws_the_first_val_images_deterministically(tmp_path, tiny_model):
    info = predictions_grid(tiny_model["model"], tiny_model["data"], tmp_path / "a.png", PARAMS)
    predictions_grid(tiny_model["model"], tiny_model["data"], tmp_path / "b.png", PARAMS)
    assert info["images"] == 3 and info["bytes"] == (tmp_path / "a.png").stat().st_size
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert Image.open(tmp_path / "a.png").size == (600, 680)  # 2 columns x 2 rows of 3 x 3.2 in, a title, 100 dpi


def test_predictions_grid_names_a_missing_model(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="missing.tflite: model not found"):
        predictions_grid(tmp_path / "missing.tflite", tiny_model["data"], tmp_path / "a.png", PARAMS)


@pytest.mark.slow
def test_plots_stage_runs_its_dvc_command_on_the_tiny_chain(tiny_chain, tmp_path):
    for part in ("data/dataset", "tflite", "evaluate"):
        shutil.copytree(tiny_chain / "artifacts" / part, tmp_path / "artifacts" / part)
    write_params(tmp_path)
    outs = [tmp_path / "artifacts/plots/predictions.png", tmp_path / "artifacts/plots/map_vs_size.png"]
    runs = []
    for _ in range(2):
        proc = run_stage("plots", tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append([p.read_bytes() for p in outs])
    assert "[plots 1/2]" in proc.stdout and "4 images" in proc.stdout
    assert runs[0] == runs[1] and all(b[:8] == PNG for b in runs[0])  # same inputs, same bytes
    assert Image.open(outs[0]).size == (600, 680)  # tiny params: 4 images, 2 columns


# ---- `dvc plots show`, as the README runs it, in headless Chromium (marker `browser`) ----

def plot_paths() -> list[str]:
    """Every plot dvc.yaml declares (files and folders)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].values()
    return [next(iter(p)) if isinstance(p, dict) else p for s in stages for p in s.get("plots", [])]


EMBED = re.compile(r"var spec = (.*?);\s*vegaEmbed\('#([^']+)'", re.S)  # dvc plots show's page: (spec, div id)


def plot_id(rel: str) -> str:
    """The div id `dvc plots show` gives a plot path."""
    return re.sub(r"[^A-Za-z0-9]", "_", rel)


def dvc_plots_page(project: Path) -> Path:
    """`dvc plots show` in a scratch git + DVC project holding this repo's dvc.yaml, params.yaml, .dvc/config, the
    template, web/node_modules (linked) and the plot files the repo has; the image plots drawn from its evaluate data."""
    from bench.dvc_project import commit, run

    project.mkdir()
    run(["git", "init", "-q"], project)
    run(["dvc", "init", "-q"], project)
    for name in ("dvc.yaml", "params.yaml", ".dvc/config", "web/plots/template.html"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, project / name)
    (project / "web/node_modules").symlink_to(REPO / "web/node_modules")
    for rel in plot_paths():
        src, dst = REPO / rel, project / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        elif src.is_file():
            shutil.copy(src, dst)
    charts = project / "artifacts/plots"
    size_map_chart(REPO / "artifacts/evaluate/map_vs_size.json", REPO / "artifacts/evaluate/metrics.json",
                   charts / "map_vs_size.png")
    if not (charts / "predictions.png").is_file():
        shutil.copy(charts / "map_vs_size.png", charts / "predictions.png")
    run(["git", "config", "user.email", "test@example.invalid"], project)
    run(["git", "config", "user.name", "test"], project)
    commit(project, "plots")
    out = run(["dvc", "plots", "show"], project).stdout
    page = project / "dvc_plots/index.html"
    assert page.as_uri() in out
    return page


def vega_installed() -> None:
    path = REPO / "web/node_modules/vega-embed/build/vega-embed.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `npm ci --prefix web` (scripts/web_env.sh does it)")


@pytest.mark.browser
@pytest.mark.skipif(DVC is None, reason="dvc is not installed in this environment")
def test_dvc_plots_show_renders_offline_in_chromium(tmp_path):
    from bench.browser import chromium, chromium_path
    from tests.test_web import require

    require(chromium_path, "browser")
    require(lambda: __import__("playwright.sync_api"), "browser")
    require(vega_installed, "dvc plots")
    page_file = dvc_plots_page(tmp_path / "project")
    html = page_file.read_text()
    # DVC gives a declared plot without data (the teacher's, where teacher.variant is 'none') an empty spec
    specs = dict((div, spec) for spec, div in EMBED.findall(html))
    empty = sorted(div for div, spec in specs.items() if spec == "{}")
    assert empty == sorted(plot_id(rel) for rel in plot_paths() if not (REPO / rel).exists() and rel[-4:] != ".png")
    drawn = sorted(set(specs) - set(empty))
    assert len(drawn) >= 2 and "cdn.jsdelivr" not in html and "https://" not in html.split("<body>")[0]
    blocked: list[str] = []

    def offline(route) -> None:
        if route.request.url.startswith(("file://", "http://127.0.0.1")):
            return route.continue_()
        blocked.append(route.request.url)
        return route.abort()

    with chromium() as browser:
        page = browser.new_page()
        page.route("**/*", offline)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_file.as_uri())
        # vega's canvas or svg (not the menu's icon) in each plot that has data
        marks = " + ', ' + ".join(f"'#{div} .vega-embed .marks, #{div}.vega-embed .marks'" for div in drawn)
        page.wait_for_function(f"document.querySelectorAll({marks}).length >= {len(drawn)}", timeout=60_000)
        painted = page.evaluate(f"""() => [...document.querySelectorAll({marks})].map(el =>
            el.tagName === 'svg' ? el.querySelectorAll('path, text').length :
            el.getContext('2d').getImageData(0, 0, el.width, el.height).data.filter((v, i) => i % 4 === 3 && v > 0).length)""")
        images = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert not errors and not blocked, (errors, blocked)
    assert len(painted) == len(drawn) and min(painted) > 0  # every chart with data drew something
    shown = {Path(src).name: width for src, width in images}
    assert any("predictions.png" in n for n in shown) and any("map_vs_size.png" in n for n in shown), shown
    assert min(shown.values()) > 0  # every image plot loaded


@pytest.mark.skipif(DVC is None, reason="dvc is not installed in this environment")
def test_readme_command_needs_no_flags():
    """`dvc plots show` picks the repo's offline template from .dvc/config, and the lock pins vega."""
    out = subprocess.run([DVC, "config", "plots.html_template"], cwd=REPO, capture_output=True, text=True, check=True)
    assert (REPO / ".dvc" / out.stdout.strip()).resolve() == REPO / "web/plots/template.html"
    lock = json.loads((REPO / "web/package-lock.json").read_text())["packages"]
    assert {lock[f"node_modules/{p}"]["version"].split(".")[0] for p in ("vega", "vega-lite")} == {"5"}
