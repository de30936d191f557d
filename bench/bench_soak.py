"""Soak: scrape the real exporter for --minutes while a writer grows the demo database.

Reports the exporter's RSS at start and end and scrape latency p50/p99. Not part of the test suite.

    .venv/bin/python bench/bench_soak.py --minutes 30 --scrapers 4
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline_exporter.packs.method333.demo import build_demo  # noqa: E402
from tests.support.procs import free_port, running, wait_for  # noqa: E402

CONFIG = """
packs: [method333]
defaults: {interval: 5s}
checks: {size_interval: 5s, integrity_interval: 1m, host_interval: 5s}
files: {interval: 5s}
"""


def rss_kb(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def writer(db: Path, stop: threading.Event, counts: dict) -> None:
    """The pipeline: a few hundred rows a second over every growing table, in WAL mode."""
    conn = sqlite3.connect(db, timeout=5, isolation_level=None)
    rnd = random.Random(1)
    site = conn.execute("SELECT MAX(id) FROM sites").fetchone()[0] or 1
    while not stop.is_set():
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(20):
            site += 1
            conn.execute("INSERT INTO sites (id, domain, status, error_type) VALUES (?, ?, 'found', ?)",
                         (site, f"soak{site}.example", rnd.choice([None, "timeout", f"e{rnd.randrange(50)}"])))
            conn.execute("INSERT INTO outreaches (site_id, channel, contact, status, sent_at) "
                         "VALUES (?, 'email', 'x', 'sent', datetime('now'))", (site,))
            conn.execute("INSERT INTO llm_usage (stage, provider, model, prompt_tokens, completion_tokens, cost_usd) "
                         "VALUES ('scoring', 'openrouter', 'm', 100, 20, 0.001)")
            conn.execute(
                "INSERT INTO http_errors (source, stage, status_code, url) VALUES ('scraper', 'fetch', 429, 'u')"
            )
        conn.execute("COMMIT")
        counts["rows"] += 80
        stop.wait(0.1)
    conn.close()


def scraper(url: str, stop: threading.Event, latencies: list, errors: list, pause: float) -> None:
    session = requests.Session()
    while not stop.is_set():
        t = time.perf_counter()
        try:
            response = session.get(url, timeout=30)
            ok = response.status_code == 200 and response.text.rstrip().endswith(tuple("0123456789"))
        except requests.RequestException as exc:
            ok = False
            errors.append(repr(exc))
        latencies.append(time.perf_counter() - t)
        if not ok:
            errors.append("bad response")
        stop.wait(pause)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sites", type=int, default=20_000)
    parser.add_argument("--scrapers", type=int, default=4, help="concurrent scrapers (default 4)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between one scraper's requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        db = tmp / "sites.db"
        build_demo(db, sites=args.sites, seed=333, files_dir=tmp)
        (tmp / "config.yml").write_text(CONFIG)
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "pipeline_exporter",
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--database-url",
            f"sqlite:///{db}",
            "--config.file",
            str(tmp / "config.yml"),
            "--coverage-file",
            str(tmp / "coverage" / "coverage-summary.json"),
            "--e2e-report",
            str(tmp / "test-results" / "e2e-junit.xml"),
        ]
        url = f"http://127.0.0.1:{port}/metrics"
        with running(cmd, tmp / "exporter.log", env={**os.environ, "PYTHONPATH": str(REPO)}) as proc:
            wait_for(
                lambda: requests.get(url.replace("/metrics", "/-/ready"), timeout=5).status_code == 200,
                timeout=60,
                what="the exporter",
            )
            requests.get(url, timeout=30)
            rss_start, size_start = rss_kb(proc.pid), db.stat().st_size
            stop, counts, latencies, errors = threading.Event(), {"rows": 0}, [], []
            threads = [threading.Thread(target=writer, args=(db, stop, counts))]
            threads += [
                threading.Thread(target=scraper, args=(url, stop, latencies, errors, args.pause))
                for _ in range(args.scrapers)
            ]
            for thread in threads:
                thread.start()
            started, rss_samples = time.monotonic(), []
            try:
                while time.monotonic() - started < args.minutes * 60:
                    time.sleep(min(10.0, args.minutes * 60))
                    rss_samples.append(rss_kb(proc.pid))
                    print(
                        f"  {time.monotonic() - started:6.0f}s rss={rss_samples[-1] / 1024:.1f} MiB "
                        f"scrapes={len(latencies)} rows+={counts['rows']}",
                        flush=True,
                    )
            finally:
                stop.set()
                for thread in threads:
                    thread.join(60)
            rss_end = rss_kb(proc.pid)
            alive = proc.poll() is None
            wal = tmp / "sites.db-wal"
            size_end = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
        log = (tmp / "exporter.log").read_text(errors="replace")
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    print(
        f"minutes={args.minutes:g} scrapers={args.scrapers} scrapes={len(latencies)} errors={len(errors)} alive={alive}"
    )
    print(f"database: {size_start / 1e6:.1f} MB -> {size_end / 1e6:.1f} MB (file + WAL) (+{counts['rows']} rows)")
    print(
        f"rss: start {rss_start / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB, "
        f"max {max(rss_samples or [rss_end]) / 1024:.1f} MiB, end/start {rss_end / max(1, rss_start):.2f}"
    )
    print(
        f"scrape latency: p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms, max {ordered[-1] * 1000:.1f} ms, "
        f"mean {statistics.mean(ordered) * 1000:.1f} ms"
    )
    warnings = [line for line in log.splitlines() if "level=warning" in line or "level=error" in line]
    print(f"log warnings/errors: {len(warnings)}" + "".join(f"\n  {w[:200]}" for w in warnings[:5]))
    return 0 if alive and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
