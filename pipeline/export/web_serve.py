"""Serve a web bundle on 127.0.0.1: the MIME types browsers insist on for ES modules and WebAssembly, and the
cross-origin isolation headers (COOP/COEP) without which there is no SharedArrayBuffer, so no wasm threads.

Only the bundle's own files are served: no directory listings, nothing a symlink or `..` reaches outside the
folder. A connection that sends nothing for `timeout_s`, or has not sent a whole request line and headers within
`timeout_s` of starting one (a client trickling bytes), is closed, so idle and slow clients cannot hold threads.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MIME = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
        ".onnx": "application/octet-stream", ".json": "application/json", ".css": "text/css",
        ".html": "text/html; charset=utf-8"}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "same-origin"}
TIMEOUT_S = 10.0  # idle connection, or a request line + headers still arriving, after this long: closed


class BundleHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME}

    def setup(self) -> None:
        self.timeout = self.server.timeout_s  # StreamRequestHandler: every read waits at most this long
        super().setup()

    def handle_one_request(self) -> None:
        # a whole request line and its headers must arrive within timeout_s, however slowly they trickle in
        self._deadline = threading.Timer(self.server.timeout_s, self._drop)
        self._deadline.start()
        try:
            super().handle_one_request()
        finally:
            self._deadline.cancel()

    def parse_request(self) -> bool:
        ok = super().parse_request()  # the headers are in: the deadline is met (the response is not timed)
        self._deadline.cancel()
        return ok

    def _drop(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_head(self):
        path = self.translate_path(self.path)
        target = os.path.join(path, "index.html") if os.path.isdir(path) else path
        root = os.path.realpath(self.directory)
        for candidate in {path, target}:
            real = os.path.realpath(candidate)
            if os.path.lexists(candidate) and real != root and not real.startswith(root + os.sep):
                self.send_error(404, "File not found")  # a symlink out of the bundle: not one of its files
                return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404, "File not found")  # no listings: the bundle's files are named by its page
        return None

    def end_headers(self) -> None:
        for key, value in ISOLATION.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)


def make_server(folder: str | Path, port: int = 0, verbose: bool = False,
                timeout_s: float = TIMEOUT_S) -> ThreadingHTTPServer:
    """An HTTP server for `folder` on 127.0.0.1 (`port` 0: any free port); call serve_forever() on it."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise FileNotFoundError(f"{folder}: no index.html; build the bundle first (`dvc repro web`)")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(BundleHandler, directory=str(folder)))
    server.daemon_threads = True
    server.verbose, server.timeout_s = verbose, timeout_s
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def serve_in_thread(folder: str | Path, port: int = 0, timeout_s: float = TIMEOUT_S) -> tuple[str, ThreadingHTTPServer]:
    """Serve `folder` from a daemon thread; returns (URL, server). Stop it with server.shutdown()."""
    server = make_server(folder, port, timeout_s=timeout_s)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return url_of(server), server
