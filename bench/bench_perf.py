"""Collection cost, /metrics latency, memory and writer impact at 100k and 1M sites; query-exporter beside.

Not part of the test suite: run `.venv/bin/python bench/bench_perf.py [--sizes 100000,1000000]`.
Demo databases are cached under bench/out/ (gitignored); each run works on a copy. Prints one
table and writes it to docs/performance.md with the date, the machine and the git commit.
query-exporter is looked for in /tmp/qe-venv (`python3 -m venv /tmp/qe-venv && /tmp/qe-venv/bin/pip
install query-exporter`); without it that column says why it is missing.
"""

from __future__ import annotations

import argparse
import http.client
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

from pipeline_exporter.app import Pipeline  # noqa: E402
from pipeline_exporter.config import load_config  # noqa: E402
from pipeline_exporter.packs.method333.demo import build_demo  # noqa: E402
from pipeline_exporter.sql import render, statements, window_sql  # noqa: E402
from pipeline_exporter.windows import Windowed  # noqa: E402

OUT = REPO / "bench" / "out"
DOC = REPO / "docs" / "performance.md"
QE = Path("/tmp/qe-venv/bin/query-exporter")
NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
SCRAPERS = 50
INDEXES = ["plausible"]  # which demo database the run used, for the report
WRITES_PER_MINUTE = 1000


# --------------------------------------------------------------------------- databases

# The indexes a pipeline plausibly has (its own lookups), not the ones the project's DDL adds.
PLAUSIBLE_INDEXES = (
    "CREATE INDEX pe_sites_status ON sites(status)",
    "CREATE INDEX pe_outreaches_site ON outreaches(site_id)",
    "CREATE INDEX pe_conversations_site ON conversations(site_id)",
    "CREATE INDEX pe_cron_job_logs_job ON cron_job_logs(job_name)",
)


def demo_db(sites: int, indexes: str = "plausible") -> Path:
    """A working copy of the cached demo database of that size (built once, ~1.5 min at 1M), with
    the plausible indexes only, or the project's full DDL (``indexes="full"``)."""
    cached = OUT / f"demo-{sites}-chrono.db"
    if not cached.exists():
        print(f"building demo database with {sites:,} sites ...", flush=True)
        build_demo(cached, sites=sites, seed=333, now=NOW)
    if indexes == "plausible":
        plausible = OUT / f"demo-{sites}-plausible.db"
        if not plausible.exists():
            shutil.copyfile(cached, plausible)
            conn = sqlite3.connect(plausible)
            names = [row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")]
            for name in names:
                conn.execute(f"DROP INDEX {name}")
            for statement in PLAUSIBLE_INDEXES:
                conn.execute(statement)
            conn.execute("ANALYZE")
            conn.commit()
            conn.close()
        cached = plausible
    work = OUT / f"work-{sites}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(cached, work)
    return work


def config_for(db: Path):
    return load_config(None, {"database_url": f"sqlite:///{db}", "coverage": OUT / "none.json",
                              "e2e_report": OUT / "none.xml"})


# --------------------------------------------------------------------------- raw SQL floor

def _literal(value: str, label: str) -> str:
    """A label value as a SQL string literal, aliased as the label."""
    return repr(value).replace(chr(34), chr(39)) + f" AS {label}"


def raw_sql_pass(db: Path) -> float:
    """Seconds for every pack query as plain SQL through sqlite3 (full pass, histograms bucketed in SQL)."""
    config = config_for(db)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    now = NOW.timestamp()
    params = {**config.parameters, "now": now, "last_key": -1, "window_key": 0, "window_key_end": 2**62}
    started = time.perf_counter()
    for query in config.queries:
        if query.windows is not None:  # every window in one statement over the oldest window, no key range
            sqls = [window_sql(query, "sqlite")]
            params.update(Windowed(query, "sqlite").parameters(now))
        else:
            sqls = statements(query, "sqlite")
        for sql in sqls:
            conn.execute(sql, {k: v for k, v in params.items() if f":{k}" in sql}).fetchall()
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


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


def cycles(db: Path, seconds: float) -> dict[str, float]:
    """Cold cycle, then steady-state cycles (every query once, incremental ones as deltas) under the writer."""
    pipeline = Pipeline(config_for(db))
    jobs = [j for j in pipeline.jobs if j.info.name != "database_integrity"]  # hourly; timed apart

    def cycle() -> float:
        t0 = time.perf_counter()
        for job in jobs:
            pipeline.scheduler.run_job(job.info.name)
        return time.perf_counter() - t0

    cold = cycle()
    proc, queue = start_writer(db, seconds)
    steady, per_job = [], {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        steady.append(cycle())
        for state in pipeline.snapshot.states():
            per_job.setdefault(state.info.name, []).append(state.last_duration or 0.0)
        time.sleep(1.0)
    finish_writer(proc, queue)
    errors = [s.info.name for s in pipeline.snapshot.states() if s.error and s.info.kind == "query"]
    # DB time per minute at the pack's intervals: what the scheduler really spends.
    intervals = {j.info.name: j.info.interval for j in jobs}
    per_minute = sum(statistics.median(v) * 60.0 / intervals[name] for name, v in per_job.items() if name in intervals)
    pipeline.stop()
    return {
        "cold": cold,
        "steady": statistics.median(steady),
        "steady_n": len(steady),
        "per_minute": per_minute,
        "errors": errors,
        "slowest": sorted(((statistics.median(v), n) for n, v in per_job.items()), reverse=True)[:4],
    }


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


def serve_exporter(db: Path, seconds: float) -> dict[str, float]:
    """The real exporter process: scrape storm during collection, peak RSS, writer impact."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline_exporter",
            "--database-url",
            f"sqlite:///{db}",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--coverage-file",
            str(OUT / "none.json"),
            "--e2e-report",
            str(OUT / "none.xml"),
            "--log.level",
            "error",
        ],
        cwd=REPO,
    )
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        if not wait_for(lambda: get(port, "/-/ready", 2.0)[0] == 200, 600):
            raise RuntimeError("exporter never became ready")
        wproc, queue = start_writer(db, seconds)
        p50, p99, n, failed = scrape_storm(port, seconds / 2)
        paced = scrape_storm(port, seconds / 2, pace=1.0)
        w99, busy, writes = finish_writer(wproc, queue)
        cost = collection_cost(proc.pid, port, db, seconds)
    finally:
        sampler.stopped.set()
        sampler.join()
        proc.terminate()
        proc.wait(30)
    return {
        "p50": p50,
        "p99": p99,
        "scrapes": n,
        "failed": failed,
        "rss": sampler.peak,
        "paced": paced,
        "writer_p99": w99,
        "writer_busy": busy,
        "writes": writes,
        **cost,
    }


def query_seconds(port: int) -> dict[str, float]:
    """pipeline_exporter_query_duration_seconds_sum per query, from the exporter's own page."""
    status, body = get(port, "/metrics", 30.0)
    out = {}
    for line in body.decode().splitlines():
        match = re.match(r'pipeline_exporter_query_duration_seconds_sum\{query="([^"]+)"\} (\S+)', line)
        if match:
            out[match.group(1)] = float(match.group(2))
    return out


def collection_cost(pid: int, port: int, db: Path, seconds: float) -> dict:
    """The exporter's CPU-seconds per minute as two Prometheus replicas see it (a scrape each every
    15 s) while the writer adds ~1,000 rows a minute; and each query's seconds per minute."""
    proc = psutil.Process(pid)
    wproc, queue = start_writer(db, seconds)
    before_cpu = sum(proc.cpu_times()[:2])
    before = query_seconds(port)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for _ in range(2):
            get(port, "/metrics", 30.0)
        time.sleep(max(0.0, 15.0 - (time.monotonic() - started) % 15.0))
    minutes = (time.monotonic() - started) / 60.0
    cpu = (sum(proc.cpu_times()[:2]) - before_cpu) / minutes
    after = query_seconds(port)
    finish_writer(wproc, queue)
    per_query = {name: (after[name] - before.get(name, 0.0)) / minutes for name in after}
    return {"cpu_per_minute": cpu, "per_query": per_query}


def writer_alone(db: Path, seconds: float) -> tuple[float, int, int]:
    proc, queue = start_writer(db, seconds)
    return finish_writer(proc, queue)


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
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each timed phase")
    parser.add_argument("--no-query-exporter", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/performance.md")
    parser.add_argument("--indexes", choices=("plausible", "full"), default="plausible",
                        help="the pipeline's plausible indexes (default) or the project's full DDL")
    args = parser.parse_args(argv)
    INDEXES[0] = args.indexes
    sizes = [int(s) for s in args.sizes.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for sites in sizes:
        db = demo_db(sites, args.indexes)
        print(f"== {sites:,} sites: {db.stat().st_size / 2**20:.0f} MiB", flush=True)
        raw_sql_pass(db)  # warm the page cache the same way for everyone
        raw = min(raw_sql_pass(db) for _ in range(2))
        print(f"   raw SQL full pass {raw:.2f} s", flush=True)
        cyc = cycles(db, args.seconds)
        print(f"   cycles {cyc}", flush=True)
        srv = serve_exporter(db, args.seconds)
        print(f"   served {srv}", flush=True)
        alone = writer_alone(db, args.seconds)
        print(f"   writer alone p99 {alone[0] * 1000:.2f} ms busy {alone[1]} writes {alone[2]}", flush=True)
        qe = "skipped (--no-query-exporter)" if args.no_query_exporter else run_query_exporter(db, args.seconds)
        print(f"   query-exporter {qe}", flush=True)
        results[sites] = {"raw": raw, "cycles": cyc, "served": srv, "alone": alone, "qe": qe}
    text = report(results, args.seconds)
    print(text)
    if not args.no_write:
        DOC.write_text(
            DOC.read_text().split("<!-- bench -->")[0] + "<!-- bench -->\n" + text
            if DOC.exists() and "<!-- bench -->" in DOC.read_text()
            else text
        )
    return 0


def report(results: dict, seconds: float) -> str:
    sizes = list(results)
    head = "| | " + " | ".join(f"{s:,} sites" for s in sizes) + " |\n|---|" + "---|" * len(sizes) + "\n"
    rows = []

    def row(label: str, fn) -> None:
        rows.append(f"| {label} | " + " | ".join(fn(results[s]) for s in sizes) + " |")

    ms = lambda v: f"{v * 1000:.1f} ms"  # noqa: E731
    row("raw SQL, every pack query once (full pass)", lambda r: f"{r['raw']:.2f} s")
    row("exporter cycle, cold (first run: full recounts)", lambda r: f"{r['cycles']['cold']:.2f} s")
    row(
        "exporter cycle, steady state under the writer (median)",
        lambda r: f"{r['cycles']['steady']:.2f} s ({r['cycles']['steady_n']} cycles)",
    )
    row(
        "steady cycle / raw full pass (target ≤ 10 %)",
        lambda r: f"{r['cycles']['steady'] / r['raw']:.0%} {verdict(r['cycles']['steady'] / r['raw'] <= 0.10)}",
    )
    row("DB time per minute at the pack's intervals", lambda r: f"{r['cycles']['per_minute']:.2f} s/min")
    row(
        "**exporter CPU-seconds per minute** (writer running, two scrapers every 15 s) / raw full pass "
        "(target ≤ 0.10x)",
        lambda r: (
            f"{r['served']['cpu_per_minute']:.2f} s/min = {r['served']['cpu_per_minute'] / r['raw']:.2f}x "
            f"{verdict(r['served']['cpu_per_minute'] <= 0.10 * r['raw'])}"
        ),
    )
    row(
        "costliest queries (seconds per minute, measured by the exporter)",
        lambda r: ", ".join(f"{name} {cost:.2f}" for name, cost in
                            sorted(r["served"]["per_query"].items(), key=lambda item: -item[1])[:6]),
    )
    row("slowest jobs in steady state", lambda r: ", ".join(f"{n} {t:.2f} s" for t, n in r["cycles"]["slowest"]))
    row(
        f"/metrics p50 / p99, {SCRAPERS} scrapers each at 1/s during collection (target p99 ≤ 20 ms)",
        lambda r: (
            f"{ms(r['served']['paced'][0])} / {ms(r['served']['paced'][1])} "
            f"{verdict(r['served']['paced'][1] <= 0.02)} ({r['served']['paced'][2]} scrapes)"
        ),
    )
    row(
        f"/metrics p50 / p99, {SCRAPERS} scrapers back to back (saturation)",
        lambda r: (
            f"{ms(r['served']['p50'])} / {ms(r['served']['p99'])} {verdict(r['served']['p99'] <= 0.02)}"
            f" ({r['served']['scrapes']} scrapes, {r['served']['failed']} failed)"
        ),
    )
    if len(sizes) > 1:
        first = results[sizes[0]]["served"]["paced"][1]
        row(
            "/metrics p99 at 1/s vs the smallest size (target ≤ 2x)",
            lambda r: f"{r['served']['paced'][1] / first:.2f}x {verdict(r['served']['paced'][1] <= 2 * first)}",
        )
    row(
        "peak RSS of the exporter (target ≤ 150 MB at 1M)",
        lambda r: f"{r['served']['rss'] / 1e6:.0f} MB {verdict(r['served']['rss'] <= 150e6)}",
    )
    row(
        "writer insert p99 without / with exporter (target ≤ 1.2x)",
        lambda r: (
            f"{ms(r['alone'][0])} / {ms(r['served']['writer_p99'])} = "
            f"{r['served']['writer_p99'] / r['alone'][0]:.2f}x "
            f"{verdict(r['served']['writer_p99'] <= 1.2 * r['alone'][0])}"
        ),
    )
    row(
        "SQLITE_BUSY without / with exporter (target 0)",
        lambda r: f"{r['alone'][1]} / {r['served']['writer_busy']} {verdict(r['served']['writer_busy'] == 0)}",
    )

    def qe_cell(r, fn) -> str:
        return fn(r["qe"]) if isinstance(r["qe"], dict) else f"n/a: {r['qe']}"

    row(
        "query-exporter /metrics p50 / p99, 50 scrapers at 1/s",
        lambda r: qe_cell(r, lambda q: f"{ms(q['paced'][0])} / {ms(q['paced'][1])} ({q['paced'][2]} scrapes)"),
    )
    row(
        "query-exporter /metrics p50 / p99, back to back",
        lambda r: qe_cell(
            r, lambda q: f"{ms(q['p50'])} / {ms(q['p99'])} ({q['scrapes']} scrapes, {q['failed']} failed)"
        ),
    )
    row(
        "query-exporter scrape p99 / ours (1/s; back to back)",
        lambda r: qe_cell(
            r, lambda q: f"{q['paced'][1] / r['served']['paced'][1]:.1f}x; {q['p99'] / r['served']['p99']:.1f}x"
        ),
    )
    row(
        "query-exporter cycle (sum of mean query times) / our steady cycle",
        lambda r: qe_cell(
            r,
            lambda q: f"{q['cycle']:.2f} s / {r['cycles']['steady']:.2f} s = {q['cycle'] / r['cycles']['steady']:.1f}x",
        ),
    )
    row(
        "query-exporter cycle / our cold cycle",
        lambda r: qe_cell(r, lambda q: f"{q['cycle'] / r['cycles']['cold']:.1f}x"),
    )
    row("query-exporter peak RSS", lambda r: qe_cell(r, lambda q: f"{q['rss'] / 1e6:.0f} MB"))
    return (
        f"## Latest run\n\n{machine()}; each timed phase {seconds:.0f} s; writer ~{WRITES_PER_MINUTE} rows/min; "
        f"indexes: {INDEXES[0]}.\n\n"
        + head
        + "\n".join(rows)
        + "\n"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
