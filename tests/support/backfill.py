"""History backfill read back from a real Prometheus: the `pipeline-exporter backfill` command,
promtool's blocks loaded into a Prometheus without targets, and the day-by-day comparison of its
answers with the rows of each day."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.paths import REPO
from tests.support.procs import free_port, require_binary, running, wait_for

DAY = 86400
DAYS = 30
INSTANCE = "127.0.0.1:9333"
TARGET = {"job": "pipeline-exporter", "instance": INSTANCE}


def epoch(text: str | None) -> float | None:
    """Unix seconds of a stored timestamp (both forms), parsed in Python, independently of SQL."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`pipeline-exporter backfill ARGS` in a child process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pipeline_exporter", "backfill", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class Prom:
    def __init__(self, url: str):
        self.url = url

    def api(self, path: str, **params: Any) -> Any:
        body = requests.get(self.url + path, params=params, timeout=10).json()
        assert body["status"] == "success", f"{params}: {body.get('error')}"
        return body["data"]["result"]

    def daily(self, expr: str, end: int, first: int = 0) -> dict[tuple, list[float]]:
        """Values of ``expr`` at the DAYS + 1 day boundaries ending at ``end``, by labels (0.0 before ``first``)."""
        result = self.api("/api/v1/query_range", query=expr, start=end - (DAYS - first) * DAY, end=end,
                          step=f"{DAY}s")
        out = {}
        for series in result:
            stamps = [int(float(t)) for t, _ in series["values"]]
            assert stamps == [end - (DAYS - i) * DAY for i in range(first, DAYS + 1)], f"{expr}: gaps"
            # Only the labels that tell the series apart: not the name, the target or the selected event.
            labels = {k: v for k, v in series["metric"].items()
                      if k not in ("__name__", "job", "instance", "event")}
            out[tuple(sorted(labels.items()))] = [0.0] * first + [float(v) for _, v in series["values"]]
        return out

    def at(self, selector: str, end: int) -> dict[tuple, float]:
        """Every series of ``selector`` at ``end`` by (name, labels without the target)."""
        out = {}
        for r in self.api("/api/v1/query", query=selector, time=end):
            labels = {k: v for k, v in r["metric"].items() if k not in ("__name__", "job", "instance")}
            out[(r["metric"]["__name__"], tuple(sorted(labels.items())))] = float(r["value"][1])
        return out


@contextmanager
def backfilled_prometheus(out: Path, root: Path) -> Iterator[Prom]:
    """A Prometheus with no targets whose storage holds only the blocks promtool made of ``out``."""
    promtool = require_binary("promtool")
    prometheus = require_binary("prometheus")
    data = root / "prometheus-data"
    blocks = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=24h",
                             str(out), str(data)], capture_output=True, text=True, timeout=120)
    assert blocks.returncode == 0, blocks.stdout + blocks.stderr
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    log = root / "prometheus.log"
    # Retention counts back from the newest block: 30 days of history need more than the 15d default.
    with running([prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}",
                  "--storage.tsdb.retention.time=400d", f"--web.listen-address=127.0.0.1:{port}"], log, cwd=root):
        prom = Prom(f"http://127.0.0.1:{port}")
        try:
            wait_for(lambda: requests.get(prom.url + "/-/ready", timeout=2).status_code == 200,
                     timeout=30, what="prometheus")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
        yield prom


@contextmanager
def pack_backfilled(pack: str, root: Path) -> Iterator[dict[str, Any]]:
    """A pack's demo database ending 10 minutes ago, backfilled ``DAYS`` days at 1 h steps into a
    Prometheus of its own: ``{"prom", "db", "end", "config", "root"}``."""
    from pipeline_exporter import demowriter

    end = int(time.time()) - 600
    db = root / f"{pack}.db"
    demowriter.build(pack, db, now=end)
    config = root / f"{pack}.yml"
    config.write_text(f"packs: [{pack}]\ncollectors: {{host: false}}\n")
    out = root / "history.om"
    done = cli("--days", str(DAYS), "--step", "1h", "--end", str(end), "--out", str(out),
               "--config.file", str(config), "--database-url", f"sqlite:///{db}",
               "--job", TARGET["job"], "--instance", INSTANCE, cwd=root)
    assert done.returncode == 0, done.stderr
    assert out.read_text().endswith("\n# EOF\n")
    with backfilled_prometheus(out, root) as prom:
        yield {"prom": prom, "db": db, "end": end, "config": config, "root": root}


def per_day(rows: list[tuple], end: int, key: Callable[[tuple], tuple]) -> dict[tuple, list[float]]:
    """Rows (…, timestamp text, value): the sum in each day (a, b] of the DAYS days before ``end``,
    plus the sum of everything up to the first boundary as element 0."""
    start = end - DAYS * DAY
    out: dict[tuple, list[float]] = defaultdict(lambda: [0.0] * (DAYS + 1))
    for row in rows:
        ts, value = epoch(row[-2]), row[-1]
        assert ts is not None and ts <= end
        index = 0 if ts <= start else -int(-(ts - start) // DAY)  # the day whose end b has a < ts <= b
        out[key(row)][index] += value
    return out


def compare(actual: dict[tuple, list[float]], expected: dict[tuple, list[float]], what: str,
            increments: bool = True, rel: float = 1e-9) -> None:
    """Day-by-day increments (and the level at the first boundary) of Prometheus vs the rows."""
    assert set(expected) <= set(actual), f"{what}: series missing in Prometheus: {set(expected) - set(actual)}"
    for key, values in actual.items():
        want = expected.get(key, [0.0] * (DAYS + 1))
        got = [values[0]] + [b - a for a, b in zip(values, values[1:])] if increments else values
        if not increments:
            want = [0.0] + want[1:]  # increase() windows hold nothing of before the first boundary
            got = [0.0] + got[1:]
        assert got == pytest.approx(want, rel=rel, abs=1e-6), f"{what} {dict(key)}"


def compare_days(prom: Prom, selector: str, expected: dict[tuple, list[float]], end: int, agg: str = "") -> None:
    """Both readings of a backfilled counter equal the rows of each day: its level at each day boundary,
    and increase() over each day (the window [b - 1d, b] holds 25 hourly samples spanning exactly one
    day, so Prometheus does not extrapolate; the first boundary has no day of data before it)."""
    assert sum(sum(v[1:]) for v in expected.values()) > 0, f"{selector}: the demo has no rows in the window"
    compare(prom.daily(f"{agg}({selector})", end), expected, f"{agg}({selector})")
    compare(prom.daily(f"{agg}(increase({selector}[1d]))", end, first=1), expected,
            f"{agg}(increase({selector}[1d]))", increments=False)
