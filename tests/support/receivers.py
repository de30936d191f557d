"""A Slack incoming-webhook stand-in on loopback, for the alert delivery tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SlackReceiver:
    """Records every POSTed JSON body (with arrival time and path) and answers 200 at once."""

    PATH = "/services/T000/B000/XXXX"

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {"_unparsed": body.decode(errors="replace")}
                with receiver._lock:
                    receiver.messages.append({"at": time.monotonic(), "path": self.path, "json": payload})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{self.PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="slack-receiver", daemon=True)

    def start(self) -> SlackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    @contextmanager
    def running(self) -> Iterator[SlackReceiver]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def attachments(self) -> list[dict[str, Any]]:
        """Every attachment of every message, in arrival order."""
        with self._lock:
            return [a for m in self.messages for a in m["json"].get("attachments", [])]

    def about(self, text: str) -> list[dict[str, Any]]:
        """The messages whose JSON mentions ``text`` (an alert name, say)."""
        with self._lock:
            return [m for m in self.messages if text in json.dumps(m["json"])]
