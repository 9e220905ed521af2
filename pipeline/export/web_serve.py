"""Serve a web bundle on 127.0.0.1: the MIME types browsers insist on for ES modules and WebAssembly, and the
cross-origin isolation headers (COOP/COEP) without which there is no SharedArrayBuffer, so no wasm threads."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MIME = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
        ".onnx": "application/octet-stream", ".json": "application/json", ".css": "text/css",
        ".html": "text/html; charset=utf-8"}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "same-origin"}


class BundleHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME}

    def end_headers(self) -> None:
        for key, value in ISOLATION.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)


def make_server(folder: str | Path, port: int = 0, verbose: bool = False) -> ThreadingHTTPServer:
    """An HTTP server for `folder` on 127.0.0.1 (`port` 0: any free port); call serve_forever() on it."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise FileNotFoundError(f"{folder}: no index.html; build the bundle first (`dvc repro web`)")
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(BundleHandler, directory=str(folder)))
    server.verbose = verbose
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def serve_in_thread(folder: str | Path, port: int = 0) -> tuple[str, ThreadingHTTPServer]:
    """Serve `folder` from a daemon thread; returns (URL, server). Stop it with server.shutdown()."""
    server = make_server(folder, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return url_of(server), server
