"""Fixtures for the "beyond one machine" tests: two demo pipelines, a Slack stand-in, rule copies."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from exporter.demo import build_demo
from tests.support.procs import free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "prometheus" / "examples"
NOW = datetime.now(timezone.utc).replace(microsecond=0)

# Two pipelines that differ in size and seed, so their numbers differ and a mix-up shows.
# The names are the ones prometheus/examples/multi-pipeline.yml gives its two targets.
PIPELINES = {"outreach-uk": {"sites": 1500, "seed": 11}, "outreach-us": {"sites": 2500, "seed": 29}}


@pytest.fixture(scope="session")
def pipeline_dbs(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """name -> {db, coverage, e2e_report} of one demo database per pipeline."""
    out = {}
    for name, spec in PIPELINES.items():
        root = tmp_path_factory.mktemp(name)
        db = root / "db" / "sites.db"
        build_demo(db, sites=spec["sites"], seed=spec["seed"], now=NOW, files_dir=root)
        out[name] = {"db": db, "coverage": root / "coverage" / "coverage-summary.json",
                     "e2e_report": root / "test-results" / "e2e-junit.xml"}
    return out


def fast_recording_rules(tmp: Path) -> Path:
    """alerts/recording-rules.yml with every group evaluated each second (the outreach group's
    `interval: 1m` would otherwise delay its first sample by up to a minute)."""
    doc = yaml.safe_load((REPO / "alerts" / "recording-rules.yml").read_text(encoding="utf-8"))
    for group in doc["groups"]:
        group["interval"] = "1s"
    path = tmp / "recording-rules-1s.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


class SlackReceiver:
    """A Slack incoming-webhook stand-in: a threaded HTTP server that records every POST."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {"raw": body.decode(errors="replace")}
                with receiver._lock:
                    receiver.posts.append({"at": time.monotonic(), "path": self.path, "json": payload})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.port}/services/T000/B000/XXXX"
        self._thread = threading.Thread(target=self.server.serve_forever, name="slack-receiver", daemon=True)

    def start(self) -> "SlackReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def about(self, text: str) -> list[dict]:
        """The posts whose JSON mentions ``text`` (an alert name, say)."""
        with self._lock:
            return [post for post in self.posts if text in json.dumps(post["json"])]


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    receiver = SlackReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
