"""What the engine's checks of its own fast paths cost per run, at 1M sites (issue 19).

Not part of the test suite: run `.venv/bin/python bench/bench_verify.py [--sites 1000000] [--demo]`.
By default it reads a synthetic database with the row counts of the 1M-site demo (built in a few
seconds with SQL, ids in time order, each table's 7-day window holding the demo's share of its
rows); `--demo` reads bench_windows.py's cached demo instead (building it takes long).

- Keyed windows (`windows.key`): every key range read also counts the rows dated before the
  window (no extra statement: the pack's time filter is opened within the same key range); at every
  recount (hourly) the windows by key range are compared with the plain count by time over the
  whole table. Reported: the median steady run, the recount run, the exact count alone and that
  cost spread over the runs of an hour.
- Counters (`incremental`): each run also reads the events above the last run's bound (`since`),
  for a time key those dated after now (`future`), and, where the pending read does not reach the
  largest key ever seen, one probe at it. Reported: the median steady run and the median time of
  those extra statements in it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_windows import NOW, OUT, demo_db  # noqa: E402

from pipeline_exporter.config import QuerySpec, load_config  # noqa: E402
from pipeline_exporter.db import Database  # noqa: E402
from pipeline_exporter.incremental import FUTURE, SINCE, Incremental  # noqa: E402
from pipeline_exporter.jobs import count_above  # noqa: E402
from pipeline_exporter.model import Result  # noqa: E402
from pipeline_exporter.shaping import CapMemory, Shaper  # noqa: E402
from pipeline_exporter.sql import has_last_keys, render  # noqa: E402
from pipeline_exporter.states import BucketState  # noqa: E402
from pipeline_exporter.windows import BucketedWindows, key_bounds  # noqa: E402

RUNS = 7
# table -> (rows at 1M sites, days its rows span: the oldest 7-day window holds the demo's share)
SIZES = {"sites": (1_000_000, 400), "site_status_history": (3_541_313, 15.5), "llm_usage": (1_944_807, 19),
         "conversations": (886_275, 33), "http_errors": (500_000, 30), "sales": (14_941, 32),
         "opt_outs": (9_675, 32), "outreaches": (1_000_000, 60), "cron_job_logs": (20_000, 14)}
COLUMNS = {
    "sites": "domain, status, status_changed_at, created_at, updated_at",
    "site_status_history": "site_id, to_status, changed_at",
    "llm_usage": "stage, provider, model, prompt_tokens, completion_tokens, cost_usd, created_at",
    "conversations": "site_id, channel, direction, created_at",
    "http_errors": "source, stage, status_code, url, created_at",
    "sales": "site_id, channel, amount_usd, sold_at",
    "opt_outs": "channel, contact, created_at",
    "outreaches": "site_id, channel, contact, status, created_at, sent_at, delivered_at, replied_at",
    "cron_job_logs": "job_name, started_at, finished_at, status, duration_ms",
}
VALUES = {
    "sites": "'s' || i || '.example', 'found', t, t, t",
    "site_status_history": "1 + i % 1000, CASE i % 3 WHEN 0 THEN 'found' WHEN 1 THEN 'scored' ELSE 'sold' END, t",
    "llm_usage": "'scoring', CASE i % 2 WHEN 0 THEN 'a' ELSE 'b' END, 'm', 300, 50, 0.000123 * (i % 7), t",
    "conversations": "1 + i % 1000, CASE i % 2 WHEN 0 THEN 'sms' ELSE 'email' END, "
                     "CASE i % 3 WHEN 0 THEN 'inbound' ELSE 'outbound' END, t",
    "http_errors": "CASE i % 2 WHEN 0 THEN 'scraper' ELSE 'zenrows' END, 'fetch', 403 + (i % 2) * 26, 'u', t",
    "sales": "1 + i % 1000, 'email', 19.99, t",
    "opt_outs": "CASE i % 2 WHEN 0 THEN 'sms' ELSE 'email' END, 'c', t",
    "outreaches": "1 + i % 1000, CASE i % 2 WHEN 0 THEN 'sms' ELSE 'email' END, 'c', 'delivered', t, t, "
                  "CASE WHEN i % 3 = 0 THEN t END, CASE WHEN i % 9 = 0 THEN t END",
    "cron_job_logs": "'job' || (i % 20), t, t, CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END, 1000",
}


def synthetic_db(sites: int, now: float) -> Path:
    """A database with the 1M-site demo's row counts (scaled to ``sites``), ids in time order."""
    import sqlite3

    from pipeline_exporter.demowriter import schema_statements

    path = OUT / f"verify-{sites}.db"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    conn = sqlite3.connect(building)
    for statement in schema_statements("method333", "sqlite"):
        conn.execute(statement)
    conn.executemany("INSERT INTO cron_jobs (name, description, interval_seconds, enabled) VALUES (?, 'd', 60, 1)",
                     [(f"job{i}",) for i in range(20)])
    for table, (rows, days) in SIZES.items():
        n = max(1, rows * sites // 1_000_000)
        step = days * 86400 / n
        conn.execute(f"WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < {n}), "
                     f"s(i, t) AS (SELECT i, datetime(CAST({now} - {days * 86400} + i * {step} AS INTEGER), "
                     f"'unixepoch') FROM r) "
                     f"INSERT INTO {table} ({COLUMNS[table]}) SELECT {VALUES[table]} FROM s")
    conn.commit()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    building.rename(path)
    return path


def window_costs(query: QuerySpec, db: Database, params: dict[str, Any], now: float) -> dict[str, float]:
    windows = BucketedWindows(query, "sqlite", BucketState())
    t0 = time.perf_counter()
    db.read(lambda run: windows.compute(run, params, now), 600)  # the first run: a recount, checked
    due = time.perf_counter() - t0
    steady = []
    for i in range(1, RUNS + 1):  # past the first settle point: runs read their last minutes
        moment = now + windows.SETTLE_AFTER + i * query.interval
        t0 = time.perf_counter()
        db.read(lambda run, moment=moment: windows.compute(run, params, moment), 600)
        steady.append(time.perf_counter() - t0)
    assert query.windows is not None and query.windows.key is not None
    key = query.windows.key

    def exact(run: Any) -> Any:
        return windows.exact(run, {**params, "now": now}, key_bounds(run, key), now)

    t0 = time.perf_counter()
    db.read(exact, 600)
    alone = time.perf_counter() - t0
    return {"interval": query.interval, "steady": statistics.median(steady), "due": due, "exact": alone,
            "per_run": alone * query.interval / windows.FULL_EVERY, "fast": float(windows.state.fast.on)}


def counter_costs(query: QuerySpec, db: Database, params: dict[str, Any], now: float) -> dict[str, float]:
    counting = Incremental(query)
    shaper = Shaper(query, CapMemory())
    sql = render(query, "sqlite")
    assert query.incremental is not None
    runs: list[tuple[float, float]] = []
    after = query.incremental.settle_after
    moments = [now, now + after, *(now + after + k * query.interval for k in range(1, RUNS + 1))]
    for i, moment in enumerate(moments):
        plan = counting.plan(moment)
        names = {key: name for name, key in plan.named(query.incremental.start)}
        spent: list[tuple[list[Any], float]] = []

        def read(execute: Any, plan: Any = plan, spent: list = spent, moment: float = moment) -> dict[str, Result]:
            def timed(bounds: list[Any]) -> list[Result]:
                t0 = time.perf_counter()
                results = count_above(execute, sql, {**params, "now": moment}, bounds)
                spent.append((bounds, time.perf_counter() - t0))
                return results
            return counting.read(timed, plan)

        t0 = time.perf_counter()
        results = db.read(read, 600)
        shaped = {name: shaper.shape_uncapped([result]) for name, result in results.items()}
        counting.fold(shaped, results, plan, moment)
        run = time.perf_counter() - t0
        if i < 2:
            continue
        # The checks' share: the statements of the bounds since and future (and the probe) where each
        # bound has its own statement; with $last_keys, what the one statement costs beyond one bound.
        checks = 0.0
        for keys, seconds in spent:
            checking = [b for b in keys if names.get(b) in (SINCE, FUTURE) or b not in names]
            if not checking:
                continue
            if len(checking) == len(keys) or not has_last_keys(sql):
                checks += seconds * len(checking) / len(keys)
            else:
                t1 = time.perf_counter()
                db.read(lambda execute, b=keys[0], m=moment: count_above(execute, sql, {**params, "now": m}, [b]),
                        600)
                checks += max(0.0, seconds - (time.perf_counter() - t1))
        runs.append((run, checks))
    return {"interval": query.interval, "steady": statistics.median(r for r, _ in runs),
            "checks": statistics.median(e for _, e in runs)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=1_000_000)
    parser.add_argument("--demo", action="store_true", help="read the demo database, not the synthetic one")
    parser.add_argument("--shape", choices=("demo", "shuffled", "plausible"),
                        help="read bench_perf.py's database of that shape (shuffled: ids not in time order)")
    args = parser.parse_args(argv)
    if args.shape:
        from bench_perf import shaped_db
        path = shaped_db(args.sites, args.shape)
    else:
        path = demo_db(args.sites) if args.demo else synthetic_db(args.sites, NOW.timestamp())
    config = load_config(None, {"database_url": f"sqlite:///{path}"})
    db = Database(config.database_url)
    now, params = NOW.timestamp(), dict(config.parameters)
    print(f"| keyed window query ({args.sites:,} sites) | interval | steady run | recount run (checked) "
          "| exact count alone (hourly) | that, per run | fast path |")
    print("|---|---|---|---|---|---|---|")
    try:
        per_minute = 0.0
        for query in config.queries:
            if query.windows is not None and query.windows.key is not None:
                row = window_costs(query, db, params, now)
                per_minute += row["per_run"] * 60 / row["interval"]
                print(f"| {query.name} | {row['interval']:g} s | {row['steady'] * 1000:.1f} ms "
                      f"| {row['due'] * 1000:.1f} ms | {row['exact'] * 1000:.1f} ms "
                      f"| {row['per_run'] * 1000:.2f} ms | {row['fast']:.0f} |")
        print(f"\nkeyed windows' hourly check, all queries: {per_minute * 1000:.1f} ms per minute\n")
        print("| counter query | interval | steady run | checks in it (since, future, probe) |")
        print("|---|---|---|---|")
        per_minute = 0.0
        for query in config.queries:
            if query.incremental is not None:
                row = counter_costs(query, db, params, now)
                per_minute += row["checks"] * 60 / row["interval"]
                print(f"| {query.name} | {row['interval']:g} s | {row['steady'] * 1000:.1f} ms "
                      f"| {row['checks'] * 1000:.2f} ms |")
        print(f"\ncounters' extra statements, all queries: {per_minute * 1000:.1f} ms per minute")
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
