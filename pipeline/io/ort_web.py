"""The onnxruntime-web that `web/package-lock.json` pins, checked against what `npm ci` installed beside it.

Its own module (not the web bundle's) so that the training stages' environment check (`pipeline/stage/
environment.py`) can ask for it without making them depend on the bundle's code.
"""

from __future__ import annotations

import json
from pathlib import Path

ORT_PACKAGE = "onnxruntime-web"
# The wasm-only ES module, the emscripten glue it imports (also each worker thread's script) and its binary.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def pinned_ort(lock: str | Path) -> tuple[str, Path]:
    """(version, dist folder) of the onnxruntime-web that `lock` pins, checked against what npm installed beside it."""
    lock = Path(lock)
    if not lock.is_file():
        raise FileNotFoundError(f"{lock}: package-lock.json not found (it pins {ORT_PACKAGE} for the web page)")
    entry = json.loads(lock.read_text()).get("packages", {}).get(f"node_modules/{ORT_PACKAGE}")
    if not entry or "version" not in entry:
        raise ValueError(f"{lock}: no pinned {ORT_PACKAGE} (expected packages['node_modules/{ORT_PACKAGE}'].version)")
    version = entry["version"]
    package = lock.parent / "node_modules" / ORT_PACKAGE
    fix = f"run `npm ci --prefix {lock.parent}` (or `bash scripts/test.sh`, which does it)"
    if not (package / "package.json").is_file():
        raise FileNotFoundError(f"{package}: {ORT_PACKAGE} {version} is not installed; {fix}")
    installed = json.loads((package / "package.json").read_text())["version"]
    if installed != version:
        raise ValueError(f"{package}: {ORT_PACKAGE} {installed} is installed but {lock} pins {version}; {fix}")
    missing = [f for f in ORT_FILES if not (package / "dist" / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{package}/dist: missing {missing}; {fix}")
    return version, package / "dist"
