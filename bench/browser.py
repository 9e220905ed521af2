"""Headless Chromium for the web bundle, driven by Playwright: the system browser (Playwright's own download needs the
internet), a page opened on a served bundle, and images handed to the page as blobs.

Used by tests/test_web.py and bench/web_latency.py. `scripts/web_env.sh` installs what this needs.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    """The system Chromium (LEAFYOLO_CHROMIUM, else the first of CANDIDATES on PATH); FileNotFoundError says how to
    install it."""
    found = os.environ.get("LEAFYOLO_CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)
    if not found:
        raise FileNotFoundError("no Chromium on PATH (tried " + ", ".join(CANDIDATES) + "); install it with "
                                "`apt-get install -y chromium` (scripts/web_env.sh does it when run as root) or "
                                "set LEAFYOLO_CHROMIUM")
    return found


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright Browser); `--no-sandbox` because CI runs as root."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, url: str, timeout_ms: int = 60_000) -> tuple[Any, dict]:
    """A new page at `url`, once `window.leafyolo.ready` has resolved; returns (page, what ready resolved to).
    Errors raised in the page are collected in `page.errors` and fail the load with their text."""
    page = browser.new_page()
    page.set_default_timeout(timeout_ms)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.leafyolo !== undefined")
    try:
        info = page.evaluate("window.leafyolo.ready")
    except Exception as e:
        raise RuntimeError(f"the page at {url} did not load its model: {e}; page errors: {page.errors}") from e
    return page, info


BLOB = "async ([b64, type]) => new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], {type})"


def call_with_image(page: Any, method: str, image: str | Path, *args: Any) -> Any:
    """`window.leafyolo[method](blob of image, ...args)` in the page; the result as Python data."""
    data = base64.b64encode(Path(image).read_bytes()).decode()
    kind = "image/jpeg" if Path(image).suffix.lower() in (".jpg", ".jpeg") else f"image/{Path(image).suffix[1:]}"
    return page.evaluate(f"async ([b64, type, args]) => window.leafyolo.{method}(await ({BLOB})([b64, type]), ...args)",
                         [data, kind, list(args)])
