"""Collection cost per query beside plain SQL for the same numbers, on two data shapes; writer impact, WAL, memory.

Not part of the test suite: run `.venv/bin/python bench/bench_perf.py [--sizes 100000,1000000]
[--shapes demo,shuffled] [--seconds 60] [--storm]`. Shape A (`demo`) is the demo database as
built; shape B (`shuffled`) the same rows with the history tables' ids shuffled (id order is not
time order) and only the four indexes a pipeline plausibly has. Databases are cached under
bench/out/ (gitignored); each run works on a copy. Per shape and size it prints, per query, the
plain SQL giving the same numbers in one pass (with the planner's plan, and with `$scan`), the
exporter's CPU per run as the pack is written and with `$scan` dropped, and its CPU per minute at
the pack's intervals; then the exporter process's CPU per minute under a writer beside the plain
pass, the writer's insert p99 alone and beside it, the WAL's peak size, peak RSS, and whether
every number equals plain SQL at the end of the run. It writes the tables to docs/performance.md
with the date, the machine and the git commit. `--query-exporter` runs query-exporter beside
(looked for in /tmp/qe-venv; its figures go to bench/out/bench_perf.json only).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline_exporter import sql as sqlmod  # noqa: E402
from pipeline_exporter.app import Pipeline  # noqa: E402
from pipeline_exporter.config import load_config  # noqa: E402
from pipeline_exporter.model import Histogram, MetricData, Result  # noqa: E402
from pipeline_exporter.packs.method333.demo import build_demo  # noqa: E402
from pipeline_exporter.shaping import CapMemory, Shaper  # noqa: E402
from pipeline_exporter.sql import last_keys_sql, render, split_bounds, statements, window_sql  # noqa: E402
from pipeline_exporter.windows import Windowed  # noqa: E402

OUT = REPO / "bench" / "out"
DOC = REPO / "docs" / "performance.md"
QE = Path("/tmp/qe-venv/bin/query-exporter")
NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
SCRAPERS = 50
WRITES_PER_MINUTE = 1000


# --------------------------------------------------------------------------- databases

# The indexes a pipeline plausibly has (its own lookups), not the ones the project's DDL adds.
PLAUSIBLE_INDEXES = (
    "CREATE INDEX pe_sites_status ON sites(status)",
    "CREATE INDEX pe_outreaches_site ON outreaches(site_id)",
    "CREATE INDEX pe_conversations_site ON conversations(site_id)",
    "CREATE INDEX pe_cron_job_logs_job ON cron_job_logs(job_name, started_at)",
)
# Shape B's history tables: ids assigned in an order that is not the rows' time order.
SHUFFLED = ("outreaches", "site_status_history", "conversations", "cron_job_logs", "llm_usage", "http_errors",
            "sales", "opt_outs")
SHAPES = {
    "demo": "shape A: the demo database as built (ids in time order, the project's full DDL)",
    "shuffled": "shape B: the same rows, history ids shuffled (id order is not time order), only the four "
                "plausible indexes",
    "plausible": "the demo's ids in time order, only the four plausible indexes",
}


def shuffle_ids(conn: sqlite3.Connection, table: str) -> None:
    """Give the rows of ``table`` new ids in a pseudo-random order (a multiplicative hash of the old
    id): the table is rebuilt in the new id order, and references to its ids follow."""
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()[0]
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    conn.execute("CREATE TEMP TABLE pe_map (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")
    conn.execute(f"INSERT INTO pe_map SELECT id, ROW_NUMBER() OVER (ORDER BY (id * 2654435761) % 4294967291, id) "
                 f"FROM {table}")
    conn.execute(re.sub(rf"CREATE TABLE\s+(IF NOT EXISTS\s+)?\"?{table}\"?", f"CREATE TABLE {table}_pe_new", ddl,
                        count=1))
    others = ", ".join(f"t.{c}" for c in columns if c != "id")
    conn.execute(f"INSERT INTO {table}_pe_new ({', '.join(columns)}) SELECT m.new, {others} FROM {table} t "
                 f"JOIN pe_map m ON m.old = t.id ORDER BY m.new")
    if table == "outreaches":
        for referring in ("sales", "conversations"):
            conn.execute(f"UPDATE {referring} SET outreach_id = (SELECT new FROM pe_map WHERE old = outreach_id) "
                         "WHERE outreach_id IS NOT NULL")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_pe_new RENAME TO {table}")
    conn.execute("DROP TABLE pe_map")


def shaped_db(sites: int, shape: str) -> Path:
    """The cached database of that size and shape (built once; the demo ~1.5 min at 1M, the shuffled
    copy a few more)."""
    cached = OUT / f"demo-{sites}-chrono.db"
    if not cached.exists():
        print(f"building demo database with {sites:,} sites ...", flush=True)
        build_demo(cached, sites=sites, seed=333, now=NOW)
    if shape == "demo":
        return cached
    path = OUT / f"demo-{sites}-{shape}.db"
    if not path.exists():
        print(f"building the {shape} copy of {sites:,} sites ...", flush=True)
        building = path.with_suffix(".building")
        shutil.copyfile(cached, building)
        conn = sqlite3.connect(building, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA legacy_alter_table = ON")
        conn.execute("BEGIN")
        if shape == "shuffled":
            for table in SHUFFLED:
                shuffle_ids(conn, table)
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")]
        for name in names:
            conn.execute(f"DROP INDEX {name}")
        for statement in PLAUSIBLE_INDEXES:
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("VACUUM")
        conn.close()
        building.rename(path)
    return path


def demo_db(sites: int, shape: str = "plausible") -> Path:
    """A working copy of the cached database of that size and shape."""
    cached = shaped_db(sites, shape)
    work = OUT / f"work-{sites}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(cached, work)
    return work


def config_for(db: Path):
    return load_config(None, {"database_url": f"sqlite:///{db}", "coverage": OUT / "none.json",
                              "e2e_report": OUT / "none.xml"})


# --------------------------------------------------------------------------- plain SQL, per query


class Hints:
    """``$scan`` as the packs write it (``on``), or dropped: the planner's choice (``off``)."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self) -> None:
        self.saved = sqlmod.SCAN_SQL["sqlite"]
        if not self.on:
            sqlmod.SCAN_SQL["sqlite"] = "{0}"

    def __exit__(self, *_: object) -> None:
        sqlmod.SCAN_SQL["sqlite"] = self.saved


def _literal(value: str, label: str) -> str:
    """A label value as a SQL string literal, aliased as the label."""
    return repr(value).replace(chr(34), chr(39)) + f" AS {label}"


def plain_statements(query, now: float, parameters: dict) -> list[tuple[str, dict]]:
    """The plain SQL giving a query's numbers in one pass: the pack's statement over every event (a
    counter's bound below every key), a window's every window in one statement over its oldest
    window by time alone (no key range), histograms bucketed in SQL."""
    params = {**parameters, "now": now, "last_key": -1, "pe_last_key_0": -1, "window_key": 0,
              "window_key_end": 2**62}
    if query.windows is not None:
        params.update(Windowed(query, "sqlite").parameters(now))
        sqls = [window_sql(query, "sqlite")]
    else:
        sqls = [last_keys_sql(sql, 1) for sql in statements(query, "sqlite")]
    return [(sql, {k: v for k, v in params.items() if re.search(rf":{k}\b", sql)}) for sql in sqls]


def sqlite_result(conn: sqlite3.Connection, sql: str, params: dict) -> Result:
    cursor = conn.execute(sql, params)
    rows = cursor.fetchall()
    return Result(columns=[d[0] for d in cursor.description], rows=[tuple(r) for r in rows])


def plain_per_query(db: Path, hinted: bool, repeat: int = 2) -> dict[str, float]:
    """CPU seconds (process time; this process runs SQLite) of each query's plain SQL, best of ``repeat``."""
    config = config_for(db)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    now = time.time()
    best: dict[str, float] = {}
    with Hints(hinted):
        plans = {query.name: plain_statements(query, now, dict(config.parameters)) for query in config.queries}
    for _ in range(repeat):
        for name, plan in plans.items():
            t0 = time.process_time()
            for sql, params in plan:
                conn.execute(sql, params).fetchall()
            best[name] = min(best.get(name, math.inf), time.process_time() - t0)
            time.sleep(0)  # let the other variant's pass interleave on a busy machine
    conn.close()
    return best


# --------------------------------------------------------------------------- writer

def writer(db: str, seconds: float, result: mp.Queue) -> None:
    """Append ~1,000 rows a minute across the append-only tables, one transaction each, like the pipeline."""
    conn = sqlite3.connect(db, timeout=0, isolation_level=None)  # timeout 0: every SQLITE_BUSY is seen
    rng = random.Random(7)
    stamp = lambda: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())  # noqa: E731
    statements = [
        (
            40,
            "INSERT INTO site_status_history (site_id, from_status, to_status, changed_at) VALUES "
            "(?, 'found', 'scraped', ?)",
            lambda: (rng.randint(1, 1000), stamp()),
        ),
        (
            30,
            "INSERT INTO llm_usage (site_id, stage, provider, model, prompt_tokens, "
            "completion_tokens, cost_usd, created_at) "
            "VALUES (?, 'scoring', 'openrouter', 'bench-model', 900, 120, 0.0031, ?)",
            lambda: (rng.randint(1, 1000), stamp()),
        ),
        (
            15,
            "INSERT INTO http_errors (source, stage, status_code, url, created_at) VALUES "
            "('scraper', 'scraping', 403, 'u', ?)",
            lambda: (stamp(),),
        ),
        (
            5,
            "INSERT INTO opt_outs (channel, contact, created_at) VALUES ('email', 'x@example.com', ?)",
            lambda: (stamp(),),
        ),
        (
            5,
            "INSERT INTO sales (site_id, channel, amount_usd, sold_at) VALUES (1, 'email', 750, ?)",
            lambda: (stamp(),),
        ),
        (
            5,
            "INSERT INTO cron_job_logs (job_name, started_at, finished_at, status, duration_ms) "
            "VALUES ('benchJob', ?, ?, 'success', 1000)",
            lambda: (stamp(), stamp()),
        ),
    ]
    weights = [w for w, *_ in statements]
    latencies, busy = [], 0
    gap = 60.0 / WRITES_PER_MINUTE
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline:
        _, sql, args = rng.choices(statements, weights)[0]
        t0 = time.perf_counter()
        while True:
            try:
                conn.execute(sql, args())
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                busy += 1
                time.sleep(0.001)
        latencies.append(time.perf_counter() - t0)
        next_at += gap
        time.sleep(max(0.0, next_at - time.monotonic()))
    conn.close()
    result.put((latencies, busy))


def start_writer(db: Path, seconds: float) -> tuple[mp.Process, mp.Queue]:
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=writer, args=(str(db), seconds, queue))
    proc.start()
    return proc, queue


def finish_writer(proc: mp.Process, queue: mp.Queue) -> tuple[float, int, int]:
    latencies, busy = queue.get()
    proc.join()
    return pct(latencies, 99), busy, len(latencies)


# --------------------------------------------------------------------------- collection cycles


class Clock:
    """The real clock, until frozen (the verification runs every query at one instant)."""

    def __init__(self) -> None:
        self.frozen: float | None = None

    def __call__(self) -> float:
        return time.time() if self.frozen is None else self.frozen


def exporter_per_query(db: Path, seconds: float, hinted: bool) -> dict:
    """Every query once cold, then in cycles under the writer for ``seconds``: each query's CPU
    seconds (process time) per run in steady state; then, the writer stopped, one cycle at a frozen
    instant whose every number is checked against plain SQL at that instant."""
    clock = Clock()
    with Hints(hinted):
        pipeline = Pipeline(config_for(db), clock=clock)
    jobs = [j.info for j in pipeline.jobs if j.info.kind == "query"]
    t0 = time.process_time()
    for job in jobs:
        pipeline.scheduler.run_job(job.name)
    cold = time.process_time() - t0
    proc, queue = start_writer(db, seconds)
    per: dict[str, list[float]] = {job.name: [] for job in jobs}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for job in jobs:
            t0 = time.process_time()
            pipeline.scheduler.run_job(job.name)
            per[job.name].append(time.process_time() - t0)
        time.sleep(1.0)
    finish_writer(proc, queue)
    checked = verify(pipeline, clock, db)
    errors = [s.info.name for s in pipeline.snapshot.states() if s.error and s.info.kind == "query"]
    pipeline.stop()
    return {"cold": cold, "runs": {name: statistics.median(v) for name, v in per.items() if v},
            "cycles": min(len(v) for v in per.values()), "intervals": {j.name: j.interval for j in jobs},
            "errors": errors, "verified": checked}


def _series(data: list[MetricData]) -> dict[str, dict]:
    """Series by metric name, zeros left out (a window keeps a label set at 0 for a while)."""
    out = {}
    for datum in data:
        out[datum.name] = {k: v for k, v in datum.series.items() if not (isinstance(v, (int, float)) and v == 0)}
    return out


def verify(pipeline: Pipeline, clock: Clock, db: Path) -> dict:
    """Run every query once more at a frozen instant and compare every series with plain SQL there."""
    clock.frozen = time.time()
    now = clock.frozen
    config = pipeline.config
    for query in config.queries:
        pipeline.scheduler.run_job(query.name)
    states = {s.info.name: s for s in pipeline.snapshot.states()}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    series, mismatched = 0, []
    for query in config.queries:
        shaper = Shaper(query, CapMemory())
        plan = plain_statements(query, now, dict(config.parameters))
        results = [sqlite_result(conn, sql, params) for sql, params in plan]
        if query.windows is not None:
            windowed = Windowed(query, "sqlite")
            expected = [shaper.cap(m, d) for m, d in zip(query.metrics, windowed.shape(results[0]))]
        else:
            expected = shaper.shape([split_bounds(r, 1)[0] if "pe_bound" in r.columns else r for r in results])
        want, got = _series(expected), _series(states[query.name].data)
        for name, values in want.items():
            series += len(values)
            if not _same(values, got.get(name, {})):
                mismatched.append(name)
    conn.close()
    return {"series": series, "mismatched": mismatched, "at": now}


def _same(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        other = b[key]
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            if not math.isclose(float(value), float(other), rel_tol=1e-12, abs_tol=1e-9):
                return False
        elif isinstance(value, Histogram) and isinstance(other, Histogram):
            # buckets and counts exactly; the sum of ages up to float rounding (the journaled `sites`
            # run adds them in another order than SQL's SUM, whose times carry julianday's rounding:
            # 0.6 s of 1.2e12 s at 100k, 10 to 20 s of 1.2e13 s at 1M, 1.6e-12 relative)
            if (value.bounds, value.counts) != (other.bounds, other.counts) or not math.isclose(
                    value.total, other.total, rel_tol=1e-10, abs_tol=1e-9):
                return False
        elif value != other:
            return False
    return True


# --------------------------------------------------------------------------- HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, timeout: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_for(predicate, deadline_seconds: float) -> bool:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def scrape_storm(port: int, seconds: float, pace: float = 0.0) -> tuple[float, float, int, int]:
    """SCRAPERS threads scraping /metrics back to back (pace 0) or each once per ``pace`` seconds.

    Returns p50, p99 (seconds), scrapes, failures.
    """
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop() -> None:
        mine = []
        if pace:
            time.sleep(random.uniform(0, pace))
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                status, _ = get(port, "/metrics")
                ok = status == 200
            except OSError:
                ok = False
            if ok:
                mine.append(time.perf_counter() - t0)
            else:
                with lock:
                    failures[0] += 1
            if pace:
                time.sleep(max(0.0, pace - (time.perf_counter() - t0)))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(SCRAPERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return pct(latencies, 50), pct(latencies, 99), len(latencies), failures[0]


class RssSampler(threading.Thread):
    """Peak RSS of a process (and its children), sampled every 0.1 s; VmHWM read at the end too."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.1):
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
                hwm = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{self.proc.pid}/status").read_text())
                if hwm:
                    self.peak = max(self.peak, int(hwm.group(1)) * 1024)
            except (psutil.Error, OSError):
                return


class WalSampler(threading.Thread):
    """The largest size of the database's WAL file, sampled every 0.2 s."""

    def __init__(self, db: Path):
        super().__init__(daemon=True)
        self.wal = Path(f"{db}-wal")
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                self.peak = max(self.peak, self.wal.stat().st_size)
            except OSError:
                pass

    def stop(self) -> int:
        self.stopped.set()
        self.join()
        return self.peak


def serve_exporter(db: Path, seconds: float, storm: bool) -> dict:
    """The real exporter process: its CPU per minute and per query under the writer with two
    scrapers every 15 s, the writer's insert p99 and the WAL's size meanwhile, peak RSS; and, with
    ``storm``, /metrics latency under 50 scrapers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline_exporter", "--database-url", f"sqlite:///{db}",
         "--web.listen-address", f"127.0.0.1:{port}", "--coverage-file", str(OUT / "none.json"),
         "--e2e-report", str(OUT / "none.xml"), "--log.level", "error"],
        cwd=REPO,
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    out: dict = {}
    try:
        if not wait_for(lambda: get(port, "/-/ready", 2.0)[0] == 200, 900):
            raise RuntimeError("exporter never became ready")
        # Steady state only: every query has run once (the first runs are full counts) before the clock starts.
        queries = {query.name for query in config_for(db).queries}
        if not wait_for(lambda: queries <= set(query_runs(port)), 1800):
            raise RuntimeError("the first runs did not end")
        out.update(collection_cost(proc.pid, port, db, seconds))
        if storm:
            wproc, queue = start_writer(db, seconds)
            out["storm"] = scrape_storm(port, seconds / 2)
            out["paced"] = scrape_storm(port, seconds / 2, pace=1.0)
            finish_writer(wproc, queue)
    finally:
        sampler.stopped.set()
        sampler.join()
        proc.terminate()
        proc.wait(30)
    out["rss"] = sampler.peak
    return out


def query_seconds(port: int) -> dict[str, float]:
    """pipeline_exporter_query_duration_seconds_sum per query, from the exporter's own page."""
    status, body = get(port, "/metrics", 30.0)
    out = {}
    for line in body.decode().splitlines():
        match = re.match(r'pipeline_exporter_query_duration_seconds_sum\{query="([^"]+)"\} (\S+)', line)
        if match:
            out[match.group(1)] = float(match.group(2))
    return out


def query_runs(port: int) -> dict[str, float]:
    """pipeline_exporter_query_duration_seconds_count per query that has run."""
    status, body = get(port, "/metrics", 30.0)
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r'pipeline_exporter_query_duration_seconds_count\{query="([^"]+)"\} (\S+)', body.decode()) if float(m.group(2))}


def collection_cost(pid: int, port: int, db: Path, seconds: float) -> dict:
    """The exporter's CPU-seconds per minute as two Prometheus replicas see it (a scrape each every
    15 s) while the writer adds ~1,000 rows a minute; each query's seconds per minute (wall, its
    own duration metric); the writer's insert p99 and the WAL's peak size meanwhile."""
    proc = psutil.Process(pid)
    wal = WalSampler(db)
    wal.start()
    wproc, queue = start_writer(db, seconds)
    before_cpu = sum(proc.cpu_times()[:2])
    before = query_seconds(port)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for _ in range(2):
            get(port, "/metrics", 30.0)
        time.sleep(max(0.0, min(15.0 - (time.monotonic() - started) % 15.0, seconds - (time.monotonic() - started))))
    minutes = (time.monotonic() - started) / 60.0
    cpu = (sum(proc.cpu_times()[:2]) - before_cpu) / minutes
    after = query_seconds(port)
    w99, busy, writes = finish_writer(wproc, queue)
    per_query = {name: (after[name] - before.get(name, 0.0)) / minutes for name in after}
    return {"cpu_per_minute": cpu, "per_query": per_query, "writer_p99": w99, "writer_busy": busy,
            "writes": writes, "wal": wal.stop()}


def writer_alone(db: Path, seconds: float) -> dict:
    wal = WalSampler(db)
    wal.start()
    proc, queue = start_writer(db, seconds)
    p99, busy, writes = finish_writer(proc, queue)
    return {"p99": p99, "busy": busy, "writes": writes, "wal": wal.stop()}


# --------------------------------------------------------------------------- query-exporter


def qe_config(db: Path) -> dict:
    """The pack's metrics as query-exporter queries: one full pass each, the same SQL underneath."""
    config = config_for(db)
    now_sql = "CAST(strftime('%s', 'now') AS REAL)"
    metrics, queries = {}, {}
    for query in config.queries:
        if query.windows is not None:
            continue  # a window label has no column: query-exporter has no equivalent of one query, many windows
        base = render(query, "sqlite")
        base = re.sub(r":last_key\b", "-1", base)
        base = re.sub(r":now\b", now_sql, base)
        for key, val in config.parameters.items():
            base = re.sub(rf":{key}\b", str(val), base)
        for i, metric in enumerate(query.metrics):
            name = metric.name.removesuffix("_total") if metric.type == "counter" else metric.name
            if name in metrics:  # a counter's base name may be a gauge's name (OpenMetrics clash)
                name = f"{name}_{query.name}_{i}"
            labels = [f"COALESCE(CAST({spec.column} AS TEXT), '{spec.null}') AS \"{spec.name}\""
                      for spec in metric.labels]
            label_names = [spec.name for spec in metric.labels]
            where = f" WHERE {metric.filter} <> 0" if metric.filter else ""
            quoted = ", ".join(f'"{n}"' for n in label_names)
            group = f" GROUP BY {quoted}" if label_names else ""
            agg = metric.aggregate.upper()
            if metric.type == "histogram":
                sql = (
                    f"SELECT {', '.join(labels + [f'{metric.value} AS {name}'])} FROM ({base}) b "
                    f"WHERE {metric.value} IS NOT NULL"
                )
            elif metric.type == "info":
                sql = f"SELECT {', '.join(labels + [f'1 AS {name}'])} FROM ({base}) b{where}{group}"
            elif metric.values:
                parts = [
                    f"SELECT {', '.join(labels + [_literal(v, metric.values_label), f'{agg}({col}) AS {name}'])} "
                    f"FROM b{where}{group}"
                    for v, col in metric.values
                ]
                sql = f"WITH b AS ({base}) " + " UNION ALL ".join(parts)
                label_names = label_names + [metric.values_label]
            else:
                sql = f"SELECT {', '.join(labels + [f'{agg}({metric.value}) AS {name}'])} FROM ({base}) b{where}{group}"
            spec = {"type": "gauge" if metric.type == "info" else metric.type, "description": metric.help}
            if label_names:
                spec["labels"] = label_names
            if metric.buckets:
                spec["buckets"] = list(metric.buckets)
            metrics[name] = spec
            queries[f"{query.name}_{i}"] = {
                "databases": ["pipeline"],
                "metrics": [name],
                "sql": sql,
                "interval": int(query.interval),
                "timeout": int(query.timeout),
            }
    return {"databases": {"pipeline": {"dsn": f"sqlite:///{db}"}}, "metrics": metrics, "queries": queries}


def qe_latency_sums(text: str) -> tuple[float, float]:
    """Sum over queries of the mean run time (a cycle), and the total query runs so far."""
    sums, counts = {}, {}
    for line in text.splitlines():
        m = re.match(r'query_latency_(sum|count)\{[^}]*query="([^"]+)"[^}]*\} ([0-9.e+-]+)', line)
        if m:
            (sums if m.group(1) == "sum" else counts)[m.group(2)] = float(m.group(3))
    return sum(sums[q] / counts[q] for q in sums if counts.get(q)), sum(counts.values())


def run_query_exporter(db: Path, seconds: float) -> dict | str:
    if not QE.exists():
        return f"not installed at {QE}"
    cfg = OUT / f"qe-{db.stem}.yaml"
    cfg.write_text(yaml.safe_dump(qe_config(db), sort_keys=False))
    port = free_port()
    proc = subprocess.Popen(
        [str(QE), "--config", str(cfg), "-H", "127.0.0.1", "-p", str(port), "-L", "error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        n_queries = len(yaml.safe_load(cfg.read_text())["queries"])
        # Ready once every query ran once; a process that exits meanwhile is reported at once.
        def ready() -> bool:
            if proc.poll() is not None:
                raise ChildProcessError(proc.stderr.read().decode(errors="replace") if proc.stderr else "")
            return qe_latency_sums(get(port, "/metrics", 60)[1].decode())[1] >= n_queries

        try:
            if not wait_for(ready, 900):
                return "query-exporter did not complete one cycle within 15 min"
        except ChildProcessError as exc:
            last = (str(exc).strip().splitlines() or ["no output"])[-1]
            return f"query-exporter exited with {proc.returncode}: {last[:200]}"
        p50, p99, n, failed = scrape_storm(port, seconds / 2)
        paced = scrape_storm(port, seconds / 2, pace=1.0)
        cycle, _ = qe_latency_sums(get(port, "/metrics", 60)[1].decode())
    finally:
        sampler.stopped.set()
        sampler.join()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"p50": p50, "p99": p99, "scrapes": n, "failed": failed, "cycle": cycle, "rss": sampler.peak, "paced": paced}


# --------------------------------------------------------------------------- report


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "pipeline_exporter", "bench"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return (
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({model}), "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, commit {commit}{' (+ local changes)' if dirty else ''}"
    )


def verdict(ok: bool) -> str:
    return "pass" if ok else "short"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--shapes", default="demo,shuffled", help=f"of {', '.join(SHAPES)}")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each timed phase")
    parser.add_argument("--storm", action="store_true", help="also 50 scrapers on /metrics (bench_http.py)")
    parser.add_argument("--query-exporter", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/performance.md")
    parser.add_argument("--served-only", action="store_true",
                        help="measure the exporter process and the writer again; the rest from bench_perf.json")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    shapes = args.shapes.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    saved = json.loads((OUT / "bench_perf.json").read_text()) if args.served_only else {}
    for sites in sizes:
        for shape in shapes:
            if args.served_only:
                r = results[(shape, sites)] = _revive(saved[f"{shape}-{sites}"])
                db = demo_db(sites, shape)
                r["served"] = serve_exporter(db, args.seconds, args.storm)
                r["alone"] = writer_alone(db, args.seconds)
            else:
                r = results[(shape, sites)] = bench_one(sites, shape, args)
            print(json.dumps({"shape": shape, "sites": sites, **r}, default=str)[:3000], flush=True)
    text = report(results, args.seconds)
    print(text)
    (OUT / "bench_perf.json").write_text(json.dumps({f"{k[0]}-{k[1]}": v for k, v in results.items()}, default=str))
    if not args.no_write:
        DOC.write_text(
            DOC.read_text().split("<!-- bench -->")[0] + "<!-- bench -->\n" + text
            if DOC.exists() and "<!-- bench -->" in DOC.read_text()
            else text
        )
    return 0


def _revive(saved: dict) -> dict:
    """A result read back from JSON: its True/False keys were written as strings."""
    return {**saved, "plain": {h == "true": v for h, v in saved["plain"].items()},
            "runs": {h == "true": v for h, v in saved["runs"].items()}}


def bench_one(sites: int, shape: str, args: argparse.Namespace) -> dict:
    db = demo_db(sites, shape)
    print(f"== {shape} {sites:,} sites: {db.stat().st_size / 2**20:.0f} MiB", flush=True)
    plain: dict[bool, dict[str, float]] = {True: {}, False: {}}
    for _ in range(2):  # alternated, best of each: the machine is shared
        for hinted in (True, False):
            for name, seconds in plain_per_query(db, hinted).items():
                plain[hinted][name] = min(plain[hinted].get(name, math.inf), seconds)
    print(f"   plain pass {sum(plain[False].values()):.2f} s (planner), {sum(plain[True].values()):.2f} s ($scan)",
          flush=True)
    runs = {hinted: exporter_per_query(db, args.seconds, hinted) for hinted in (True, False)}
    print(f"   verified {runs[True]['verified']} / {runs[False]['verified']}", flush=True)
    served = serve_exporter(db, args.seconds, args.storm)
    alone = writer_alone(db, args.seconds)
    qe = run_query_exporter(db, args.seconds) if args.query_exporter else None
    return {"plain": plain, "runs": runs, "served": served, "alone": alone, "qe": qe}


def report(results: dict, seconds: float) -> str:
    """Per shape and size: the per-query table, then the totals."""
    parts = [f"## Latest run\n\n{machine()}; each timed phase {seconds:.0f} s; writer ~{WRITES_PER_MINUTE} rows/min. "
             "CPU seconds are process time (the exporter's process, SQLite runs in it); the machine is shared "
             "(2 cores, other sessions running), so every figure is noisy: compare within a table.\n"]
    for (shape, sites), r in results.items():
        plain, runs, served, alone = r["plain"], r["runs"], r["served"], r["alone"]
        pack = runs[True]  # the exporter as the pack is written
        intervals = pack["intervals"]
        plain_pass = sum(plain[False].values())
        parts.append(f"### {SHAPES[shape]}, {sites:,} sites\n")
        parts.append("| query | interval | plain SQL, planner | plain SQL, $scan "
                     "| exporter run, $scan as the engine chooses | exporter run, $scan dropped "
                     "| exporter per minute (pack) | that / plain |\n"
                     "|---|---|---|---|---|---|---|---|")
        order = sorted(intervals, key=lambda n: -pack["runs"].get(n, 0) * 60 / intervals[n])
        for name in order:
            run_a, run_b = pack["runs"].get(name, math.nan), runs[False]["runs"].get(name, math.nan)
            per_min = run_a * 60 / intervals[name]
            base = min(plain[False].get(name, math.nan), plain[True].get(name, math.nan))
            parts.append(f"| {name} | {intervals[name]:g} s | {plain[False].get(name, math.nan) * 1000:.1f} ms "
                         f"| {plain[True].get(name, math.nan) * 1000:.1f} ms | {run_a * 1000:.1f} ms "
                         f"| {run_b * 1000:.1f} ms | {per_min:.3f} s | {per_min / base:.2f}x |")
        in_process = {h: sum(runs[h]["runs"][n] * 60 / intervals[n] for n in runs[h]["runs"]) for h in (True, False)}
        verified = [f"{runs[h]['verified']['series']} series, "
                    f"{len(runs[h]['verified']['mismatched'])} different"
                    + (f" ({', '.join(runs[h]['verified']['mismatched'])})" if runs[h]['verified']['mismatched']
                       else "") for h in (True, False)]
        ratio = served["cpu_per_minute"] / plain_pass
        rows = [
            ("plain pass of every contract metric, windows included (planner; with $scan)",
             f"{plain_pass:.2f} s; {sum(plain[True].values()):.2f} s"),
            ("exporter, in process: CPU per minute at the pack's intervals ($scan as the engine chooses; dropped)",
             f"{in_process[True]:.2f} s; {in_process[False]:.2f} s ({pack['cycles']} cycles)"),
            ("**exporter process CPU per minute** (writer, two scrapers every 15 s) / plain pass (goal ≤ 0.10x)",
             f"{served['cpu_per_minute']:.2f} s = {ratio:.2f}x {verdict(ratio <= 0.10)}"),
            ("first run of every query (cold, CPU)", f"{pack['cold']:.2f} s"),
            ("every number equal to plain SQL at the end ($scan as the engine chooses; dropped)",
             f"{verified[0]}; {verified[1]}"),
            ("writer insert p99 alone / beside the exporter (goal ≤ 1.2x)",
             f"{alone['p99'] * 1000:.1f} ms / {served['writer_p99'] * 1000:.1f} ms = "
             f"{served['writer_p99'] / alone['p99']:.2f}x {verdict(served['writer_p99'] <= 1.2 * alone['p99'])}"),
            ("SQLITE_BUSY alone / beside", f"{alone['busy']} / {served['writer_busy']}"),
            ("WAL peak alone / beside the exporter",
             f"{alone['wal'] / 2**20:.1f} MiB / {served['wal'] / 2**20:.1f} MiB"),
            ("peak RSS of the exporter (goal ≤ 150 MB)",
             f"{served['rss'] / 1e6:.0f} MB {verdict(served['rss'] <= 150e6)}"),
            ("costliest queries by the exporter's own duration metric (wall s/min)",
             ", ".join(f"{n} {c:.2f}" for n, c in sorted(served["per_query"].items(), key=lambda i: -i[1])[:6])),
        ]
        if "storm" in served:
            rows.append((f"/metrics p50 / p99, {SCRAPERS} scrapers at 1/s; back to back",
                         f"{served['paced'][0] * 1000:.1f} / {served['paced'][1] * 1000:.1f} ms; "
                         f"{served['storm'][0] * 1000:.1f} / {served['storm'][1] * 1000:.1f} ms"))
        errors = set(runs[True]["errors"]) | set(runs[False]["errors"])
        if errors:
            rows.append(("queries that failed", ", ".join(sorted(errors))))
        parts.append("\n| | |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
