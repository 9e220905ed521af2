"""The web target: the `web` stage's bundle and its errors, `leafyolo serve`, and (marker `browser`) the page in a
real headless Chromium giving Python onnxruntime's detections on the same files.

Tolerances, measured on the default run's ONNX files (onnxruntime-web 1.23.2 wasm in Chromium vs onnxruntime 1.23.2
native; bench/results/web_latency.md: 200 val images, plus 3 BCCD JPEGs):
- the letterboxed input tensor: exactly equal (the page decodes PNG and JPEG to the same bytes as PIL, and
  letterbox.js is Pillow's fixed-point bilinear resampling, not the canvas's);
- decoding + NMS on given raw outputs: exactly equal (postprocess.js rounds to float32 where numpy does);
- raw outputs differ only by kernel rounding (wasm SIMD vs native AVX kernels): the page's FP32 model at most
  1.7e-4 letterboxed px in a box distance and 2.5e-6 in a score (the FP16 file by one float16 step, 0.031 px /
  2e-4; README "Web page"). Boxes must agree within 1e-3 letterboxed px (1e-3 / ratio original px) and scores
  within 1e-5: about 6x and 4x the measured worst case, and far below what moves a detection across a threshold;
  on the fixed test images the count and classes must be identical (elsewhere a score within ~1e-6 of the
  threshold can flip one detection: 2 of 200 val images at evaluate's score > 0.001).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipeline.config.stages import WebParams
from pipeline.export.web_bundle import build_bundle, md5, pinned_ort
from pipeline.export.web_serve import serve_in_thread
from tests.stage_runner import REPO, run_stage, write_params

LOCK = REPO / "web" / "package-lock.json"
PARAMS = WebParams(conf_thres=0.25, iou_thres=0.45, max_det=300)
BCCD = REPO.parent / "shared" / "datasets" / "bccd" / "images" / "val" / "BloodImage_00007.jpg"
BOX_TOL, SCORE_TOL = 1e-3, 1e-5  # letterboxed px; probability (module docstring)


def require(check, what: str):
    """check() or, when it raises, skip with its message; under CI=true the browser tests must run, so fail."""
    try:
        return check()
    except (FileNotFoundError, ValueError, ImportError) as e:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(f"CI must run the {what} tests: {e}")
        pytest.skip(f"{what}: {e}")


def export_fp32(module, out: Path, imgsz: int) -> Path:
    from pipeline.export.onnx_export import export_onnx

    export_onnx(copy.deepcopy(module), out / "model_fp32.onnx", imgsz)
    return out / "model_fp32.onnx"


@pytest.fixture(scope="module")
def untrained(tmp_path_factory) -> dict:
    """An untrained leafyolo_u at 64 px, exported as the onnx stage does, with a 2-class data.yaml."""
    from pipeline.model.leafyolo import LeafYOLO
    from tests.simple_data import write_simple_dataset

    root = tmp_path_factory.mktemp("web_untrained")
    data = write_simple_dataset(root / "data", n_images=2, imgsz=64)
    return {"onnx": export_fp32(LeafYOLO("leafyolo_u", nc=2), root, 64), "data": data}


def test_web_stage_runs_its_dvc_command_and_writes_a_complete_bundle(tmp_path, untrained):
    require(lambda: pinned_ort(LOCK), "web bundle")
    write_params(tmp_path)
    (tmp_path / "web").symlink_to(REPO / "web")
    onnx_dir, data_dir = tmp_path / "artifacts/onnx", tmp_path / "artifacts/data/dataset"
    onnx_dir.mkdir(parents=True)
    (onnx_dir / "model_fp32.onnx").symlink_to(untrained["onnx"])
    data_dir.parent.mkdir(parents=True)
    data_dir.symlink_to(untrained["data"].parent)
    for _ in range(2):  # the second run replaces the first bundle
        proc = run_stage("web", tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = tmp_path / "artifacts/web/bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk >= {"index.html", "app.js", "model.onnx", "config.json",
                                                 "ort/ort-wasm-simd-threaded.wasm", "ort/ort.wasm.min.mjs"}
    for name, entry in manifest["files"].items():
        assert entry == {"bytes": (bundle / name).stat().st_size, "md5": md5(bundle / name)}
    assert (bundle / "model.onnx").read_bytes() == untrained["onnx"].read_bytes()
    config = json.loads((bundle / "config.json").read_text())
    assert config["names"] == ["square", "disc"] and config["imgsz"] == 64 and config["precision"] == "fp32"
    assert config["ort_version"] == json.loads(LOCK.read_text())["packages"]["node_modules/onnxruntime-web"]["version"]
    metrics = json.loads((tmp_path / "artifacts/web/metrics.json").read_text())
    assert metrics["bundle_bytes"] == manifest["total_bytes"]
    assert metrics["model_bytes"] == manifest["files"]["model.onnx"]["bytes"]


def test_bundle_errors_name_the_missing_piece_and_the_fix(tmp_path, untrained):
    lock = tmp_path / "web" / "package-lock.json"
    lock.parent.mkdir()
    lock.write_text(LOCK.read_text())
    args = (untrained["onnx"], untrained["data"], REPO / "web/page", lock, tmp_path / "out", PARAMS)
    with pytest.raises(FileNotFoundError, match=r"is not installed; run `npm ci --prefix .*web`"):
        build_bundle(*args)
    package = lock.parent / "node_modules/onnxruntime-web"
    package.mkdir(parents=True)
    (package / "package.json").write_text('{"version": "0.0.1"}')
    with pytest.raises(ValueError, match=r"0\.0\.1 is installed but .* pins 1\.\d+\.\d+; run `npm ci"):
        build_bundle(*args)
    require(lambda: pinned_ort(LOCK), "web bundle")
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx: ONNX model not found \(the `onnx` stage"):
        build_bundle(tmp_path / "missing.onnx", *args[1:3], LOCK, tmp_path / "out", PARAMS)
    three = tmp_path / "three.yaml"
    three.write_text(f"path: {untrained['data'].parent}\ntrain: images/train\nval: images/val\n"
                     "names: [square, disc, cone]\n")
    with pytest.raises(ValueError, match="2 classes but .*three.yaml names 3"):
        build_bundle(untrained["onnx"], three, REPO / "web/page", LOCK, tmp_path / "out", PARAMS)
    assert not (tmp_path / "out").exists()  # nothing half-written
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no manifest.json"):
        build_bundle(untrained["onnx"], untrained["data"], REPO / "web/page", LOCK, tmp_path / "mine", PARAMS)


def _get(url: str) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""


def test_serve_sends_mime_types_and_isolation_headers(tmp_path):
    files = {"index.html": "text/html", "app.js": "text/javascript", "ort/x.mjs": "text/javascript",
             "ort/x.wasm": "application/wasm", "model.onnx": "application/octet-stream"}
    for name in files:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    url, server = serve_in_thread(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        for name, mime in files.items():
            status, headers, body = _get(url + name)
            assert status == 200 and body == name.encode() and headers["Content-Type"].startswith(mime), name
            assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert _get(url + "nothing.js")[0] == 404
    finally:
        server.shutdown()
    with pytest.raises(FileNotFoundError, match="no index.html"):
        serve_in_thread(tmp_path / "ort")


def _raw_get(url: str, target: str) -> int:
    """Status of `GET target` sent as written (no client-side normalisation of `..` or escapes)."""
    import http.client

    conn = http.client.HTTPConnection(url.split("//")[1].rstrip("/"), timeout=10)
    try:
        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "127.0.0.1")
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_serve_shows_only_the_bundles_own_files(tmp_path):
    bundle, outside = tmp_path / "bundle", tmp_path / "outside"
    (bundle / "ort").mkdir(parents=True)
    outside.mkdir()
    (bundle / "index.html").write_text("<p>page</p>")
    (bundle / "ort" / "x.wasm").write_bytes(b"wasm")
    (outside / "secret.txt").write_text("secret")
    (bundle / "secret.txt").symlink_to(outside / "secret.txt")  # a symlink out of the bundle
    (bundle / "elsewhere").symlink_to(outside, target_is_directory=True)
    (bundle / "inside.html").symlink_to(bundle / "index.html")  # a symlink within it is still its own file
    url, server = serve_in_thread(bundle)
    try:
        assert _get(url)[2] == _get(url + "index.html")[2] == b"<p>page</p>"
        assert _get(url + "inside.html")[2] == b"<p>page</p>" and _get(url + "ort/x.wasm")[0] == 200
        for target in ("/ort/", "/secret.txt", "/elsewhere/secret.txt", "/elsewhere/", "/../outside/secret.txt",
                       "/%2e%2e/outside/secret.txt", "/ort/%2e%2e/%2e%2e/outside/secret.txt"):
            assert _raw_get(url, target) == 404, target
    finally:
        server.shutdown()


def test_serve_closes_idle_and_slow_connections(tmp_path):
    import socket
    import time

    (tmp_path / "index.html").write_text("<p>hi</p>")
    url, server = serve_in_thread(tmp_path, timeout_s=0.5)
    address = ("127.0.0.1", server.server_address[1])
    try:
        with socket.create_connection(address, timeout=5) as idle:  # sends nothing
            t0 = time.monotonic()
            assert idle.recv(1024) == b"" and time.monotonic() - t0 < 3
        with socket.create_connection(address, timeout=5) as slow:  # one byte every 0.1 s: no read waits 0.5 s
            t0, closed = time.monotonic(), False
            for byte in b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    closed = True
                    break
                time.sleep(0.1)
                if time.monotonic() - t0 > 3:
                    break
            closed = closed or slow.recv(1024) == b""
            assert closed and time.monotonic() - t0 < 3
        assert _get(url)[2] == b"<p>hi</p>"  # still serving
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="timeout_s"):
        serve_in_thread(tmp_path, timeout_s=0)


def test_serve_holds_200_page_loads_20_at_a_time(tmp_path):
    """A bounded load on 127.0.0.1: every page load fetches each file of a bundle; every response is the file."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(0)
    files = {"index.html": b"<p>page</p>", "app.js": b"export {};", "config.json": b"{}",
             "model.onnx": rng.bytes(300_000), "ort/ort.wasm": rng.bytes(1_000_000)}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    url, server = serve_in_thread(tmp_path)

    def page_load(_: int) -> int:
        return sum(_get(url + name)[0] == 200 and _get(url + name)[2] == data for name, data in files.items())

    try:
        with ThreadPoolExecutor(20) as pool:
            served = list(pool.map(page_load, range(200)))
    finally:
        server.shutdown()
    assert served == [len(files)] * 200


def test_cli_serve_prints_the_url_and_serves_until_stopped(tmp_path):
    (tmp_path / "index.html").write_text("<p>hi</p>")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "leafyolo.cli", "serve", str(tmp_path), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and _get(url)[2] == b"<p>hi</p>"
    finally:
        proc.terminate()
        proc.wait(10)
    out = subprocess.run([sys.executable, "-m", "leafyolo.cli", "serve", str(tmp_path / "none")], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "no index.html" in out.stderr


# ---- in a real headless Chromium (marker `browser`) ----

@pytest.fixture(scope="module")
def browser():
    from bench.browser import chromium, chromium_path

    require(chromium_path, "browser")
    require(lambda: __import__("playwright.sync_api"), "browser")
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def served(tmp_path_factory, trained_tiny) -> dict:
    """The bundle of the confident tiny model (conftest `trained_tiny`), exported to FP32 ONNX as the onnx stage does;
    its page's default threshold comes from the model's own scores on the val images (tests/detection_checks.py), so
    every image has a detection on any CPU the model was trained on."""
    from pipeline.infer.backends import open_model
    from pipeline.infer.predict import preprocess, read_image
    from tests.detection_checks import conf_below_top

    require(lambda: pinned_ort(LOCK), "browser")
    model, images, root = trained_tiny
    out = tmp_path_factory.mktemp("web_bundle")
    onnx = export_fp32(model.torch_module("export"), out, 64)
    scores = open_model(onnx)(np.stack([preprocess(read_image(p), 64)[0] for p in images]))[1]
    params = dataclasses.replace(PARAMS, conf_thres=conf_below_top(scores))
    build_bundle(onnx, root / "data/data.yaml", REPO / "web/page", LOCK, out / "bundle", params)
    url, server = serve_in_thread(out / "bundle")
    yield {"url": url, "onnx": onnx, "images": images}
    server.shutdown()


@pytest.fixture(scope="module")
def page(browser, served):
    from bench.browser import open_page

    page, page.info = open_page(browser, served["url"] + "?threads=1")
    yield page
    page.close()


def _rows(dets: list[dict]) -> np.ndarray:
    return np.array([[*d["box"], d["score"], d["cls"]] for d in dets], np.float32).reshape(-1, 6)


@pytest.mark.browser
def test_page_loads_cross_origin_isolated_with_the_pinned_runtime(page):
    version = json.loads(LOCK.read_text())["packages"]["node_modules/onnxruntime-web"]["version"]
    assert page.info["crossOriginIsolated"] is True and page.info["threads"] == 1
    assert page.info["ortVersion"]["web"] == version and page.info["config"]["names"] == ["square", "disc"]
    assert page.errors == []


@pytest.mark.browser
def test_letterbox_matches_python_pixel_for_pixel(page, tmp_path):
    from bench.browser import call_with_image
    from pipeline.infer.predict import preprocess, read_image

    rng = np.random.default_rng(0)
    paths = [BCCD] if BCCD.is_file() else []  # a JPEG, 640x480: decoder and a 10x down-scale
    for w, h in [(64, 64), (97, 61), (61, 130), (30, 20), (300, 200)]:  # same size, down, up, odd sizes
        paths.append(tmp_path / f"{w}x{h}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    for path in paths:
        r = call_with_image(page, "run", path, {"raw": True})
        x, ratio, pad = preprocess(read_image(path), 64)
        assert np.array_equal(np.asarray(r["input"], np.float32), x.ravel()), path.name
        assert r["ratio"] == ratio and tuple(r["pad"]) == pad, path.name


@pytest.mark.browser
@pytest.mark.parametrize("imgsz, nc, agnostic, conf, max_det", [(64, 3, False, 0.001, 300), (128, 5, True, 0.2, 300),
                                                                (128, 2, False, 0.05, 5)])
def test_decoding_and_nms_match_python_exactly(page, imgsz, nc, agnostic, conf, max_det):
    """Random raw outputs on coarse grids: many tied scores and heavily overlapping boxes."""
    from pipeline.infer.postprocess import make_anchors, postprocess, scale_to_original

    rng = np.random.default_rng(imgsz + nc)
    n = len(make_anchors(imgsz)[0])
    boxes = (rng.integers(0, 48, (1, n, 4)) / 2).astype(np.float32)
    scores = (rng.integers(0, 64, (1, n, nc)) / 64).astype(np.float32)
    ratio, pad, shape = 0.37, (0.0, 11.0), (130, 173)
    ref = scale_to_original(postprocess(boxes, scores, imgsz, conf, 0.45, max_det, agnostic)[0], ratio, pad, shape)
    got = page.evaluate("([b, s, nc, S, o, r, p, h, w]) => { const L = window.leafyolo.lib; "
                        "return L.scaleToOriginal(L.postprocess(b, s, nc, S, o), r, p, w, h); }",
                        [boxes.ravel().tolist(), scores.ravel().tolist(), nc, imgsz,
                         {"confThres": conf, "iouThres": 0.45, "maxDet": max_det, "classAgnostic": agnostic},
                         ratio, list(pad), *shape])
    assert len(ref) > 1 and np.array_equal(_rows(got), ref)


def assert_same_detections(got: np.ndarray, ref, ratio: float) -> None:
    """The page's detections [k, 6] (x1 y1 x2 y2 score cls, original px) against Python's (tolerances: docstring)."""
    assert len(got) == len(ref) >= 1
    assert got[:, 5].astype(int).tolist() == ref.classes.tolist()
    np.testing.assert_allclose(got[:, :4], ref.boxes, rtol=0, atol=BOX_TOL / ratio)
    np.testing.assert_allclose(got[:, 4], ref.scores, rtol=0, atol=SCORE_TOL)


@pytest.mark.browser
@pytest.mark.parametrize("which", ["generated", "bccd"])
def test_page_detections_equal_python_onnxruntime(page, served, which):
    """The threshold comes from the model's own scores on the image (tests/detection_checks.py), not a fixed value:
    how confident the tiny model is, on its own images and on a BCCD photo, depends on the CPU it trained on."""
    from bench.browser import call_with_image
    from pipeline.infer.backends import open_model
    from pipeline.infer.postprocess import postprocess, scale_to_original
    from pipeline.infer.predict import predict, preprocess, read_image
    from tests.detection_checks import assert_rejects_perturbed, conf_below_top

    if which == "bccd" and not BCCD.is_file():
        pytest.skip(f"{BCCD} not present (../shared/datasets/bccd is outside this repository)")
    image = served["images"][1] if which == "generated" else BCCD
    backend = open_model(served["onnx"])
    conf = conf_below_top(backend(preprocess(read_image(image), 64)[0][None])[1], margin=2 * SCORE_TOL)
    r = call_with_image(page, "run", image, {"raw": True, "confThres": conf})
    got = _rows(r["detections"])
    # 1. the page's decoding + NMS on its own raw outputs: exactly Python's
    raw_boxes = np.asarray(r["boxes"], np.float32).reshape(1, -1, 4)
    raw_scores = np.asarray(r["scores"], np.float32).reshape(1, raw_boxes.shape[1], -1)
    own = scale_to_original(postprocess(raw_boxes, raw_scores, 64, conf, 0.45)[0], r["ratio"], r["pad"],
                            (r["height"], r["width"]))
    assert np.array_equal(got, own)
    # 2. end to end against native onnxruntime on the same file (tolerances: module docstring)
    ref = predict(backend, image, conf_thres=conf, iou_thres=0.45, names=["square", "disc"])[0]
    x = np.asarray(r["input"], np.float32).reshape(1, 3, 64, 64)
    boxes, scores = backend(x)
    assert np.abs(raw_boxes - boxes).max() <= BOX_TOL and np.abs(raw_scores - scores).max() <= SCORE_TOL
    assert_same_detections(got, ref, r["ratio"])
    assert [d["name"] for d in r["detections"]] == ref.labels
    assert_rejects_perturbed(lambda rows: assert_same_detections(rows, ref, r["ratio"]), got,
                             box=2 * BOX_TOL / r["ratio"], score=2 * SCORE_TOL)


@pytest.mark.browser
def test_picking_a_file_draws_and_lists_the_detections(page, served):
    from bench.browser import call_with_image

    image = served["images"][1]
    expected = call_with_image(page, "detect", image)
    page.set_input_files("#file", str(image))
    page.wait_for_function("document.querySelector('#status').textContent.includes('detections')")
    status = page.locator("#status").inner_text()
    items = page.locator("#list li").all_inner_texts()
    assert status.startswith(f"{len(expected)} detections · inference") and len(items) == len(expected) >= 1
    assert [t.split()[0] for t in items] == [d["name"] for d in expected]
    w, h = Image.open(image).size
    assert page.evaluate("[document.querySelector('#view').width, document.querySelector('#view').height]") == [w, h]
