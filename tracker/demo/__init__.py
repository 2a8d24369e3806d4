"""The demo newsroom: this project's own fictional feeds, served from a loopback HTTP server."""

import functools
import json
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

FEEDS_DIR = Path(__file__).parent / "feeds"


@dataclass(frozen=True)
class DemoFeed:
    url: str
    title: str
    kind: str
    language: str


class _QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the stdlib declares it as a plain attribute
        ".xml": "application/xml; charset=utf-8",
        ".json": "application/json",
    }

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(port: int = 0) -> ThreadingHTTPServer:
    """Serve the demo feeds on 127.0.0.1 from a daemon thread; call shutdown() to stop."""
    handler = functools.partial(_QuietHandler, directory=str(FEEDS_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, name="demo-feeds", daemon=True).start()
    return server


def feeds(base_url: str) -> list[DemoFeed]:
    manifest = json.loads((FEEDS_DIR / "manifest.json").read_text(encoding="utf-8"))
    return [
        DemoFeed(
            url=f"{base_url.rstrip('/')}/{entry['file']}",
            title=entry["title"],
            kind=entry["kind"],
            language=entry["language"],
        )
        for entry in manifest
    ]
