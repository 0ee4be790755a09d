"""Serving a folder of static pages on 127.0.0.1 (the demo site; test pages in the tests)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    seen: list[str] | None = None

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.seen is not None:
            self.seen.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def serve_directory(directory: Path, *, port: int = 0, seen: list[str] | None = None) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1:`port` (0 = any free port) in a thread; yields the base URL.

    When `seen` is given, the path of every GET request is appended to it.
    """
    handler_class = type("Handler", (_QuietHandler,), {"seen": seen})
    handler = functools.partial(handler_class, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name=f"static-{directory.name}", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
