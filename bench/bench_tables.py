"""Per-query cost of the queries that read the tables whose rows change in place (`sites`, `outreaches`).

Not part of the test suite: `.venv/bin/python bench/bench_tables.py [--sites 100000] [--runs 3]`.
Uses the demo databases bench/bench_perf.py caches under bench/out/ (the plausible indexes by
default). Runs every such query once cold, then ``--runs`` times with ``--changes`` site status
changes (with their journal rows) and outreach updates committed by another connection before
each run, and prints the process CPU seconds of each run (SQLite runs in this process, so CPU
time is the query's cost, whatever else the machine does).
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_perf import NOW, config_for, demo_db  # noqa: E402

from pipeline_exporter.app import Pipeline  # noqa: E402

TABLES = ("sites", "outreaches")
STATUSES = ("found", "scraped", "scored", "rescored", "proposal_ready", "contacted", "replied", "sold", "excluded")


def reads(sql: str) -> set[str]:
    return {table for table in TABLES if re.search(rf"\bFROM\s+(\$scan\(\s*)?{table}\b", sql)}


def change(db: Path, changes: int, rng: random.Random, now: float) -> None:
    """Status changes with their journal rows, an error set here and there, outreaches updated."""
    conn = sqlite3.connect(db)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
    top = conn.execute("SELECT MAX(id) FROM sites").fetchone()[0]
    top_out = conn.execute("SELECT MAX(id) FROM outreaches").fetchone()[0]
    for _ in range(changes):
        site = rng.randint(1, top)
        row = conn.execute("SELECT status FROM sites WHERE id = ?", (site,)).fetchone()
        if row is None:
            continue
        to = rng.choice(STATUSES)
        conn.execute("UPDATE sites SET status = ?, status_changed_at = ?, error_type = ? WHERE id = ?",
                     (to, stamp, rng.choice([None, None, "timeout"]), site))
        conn.execute("INSERT INTO site_status_history (site_id, from_status, to_status, changed_at) "
                     "VALUES (?, ?, ?, ?)", (site, row[0], to, stamp))
        conn.execute("UPDATE outreaches SET status = 'delivered', delivered_at = ? WHERE id = ?",
                     (stamp, rng.randint(1, top_out)))
    conn.commit()
    conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changes", type=int, default=1000, help="status changes before each run")
    parser.add_argument("--indexes", choices=("plausible", "full"), default="plausible")
    args = parser.parse_args(argv)
    db = demo_db(args.sites, args.indexes)
    clock = [NOW.timestamp()]
    config = config_for(db)
    pipeline = Pipeline(config, clock=lambda: clock[0])
    names = [q.name for q in config.queries if reads(q.sql_for("sqlite"))
             and not q.name.startswith(("site_transitions", "sites_created", "table_rows"))]
    rng = random.Random(24)
    cost: dict[str, list[float]] = {name: [] for name in names}
    for run in range(args.runs + 1):
        if run:
            clock[0] += 60.0
            change(db, args.changes, rng, clock[0])
        for name in names:
            t0 = time.process_time()
            pipeline.scheduler.run_job(name)
            cost[name].append(time.process_time() - t0)
    errors = {s.info.name: s.error for s in pipeline.snapshot.states() if s.error and s.info.name in names}
    journals = {name: (j.fast.on, j.fast_runs, j.reconciliations) for name, j in pipeline.memory.journals.items()}
    # the numbers of the last run against a new exporter's second run (the full statement) at the same clock
    fresh = Pipeline(config, clock=lambda: clock[0])
    fresh.scheduler.run_job("sites")  # the rows read in full
    fresh.scheduler.run_job("sites")  # the statement
    same = _series(pipeline, "sites") == _series(fresh, "sites")
    fresh.stop()
    pipeline.stop()
    print(f"{args.sites:,} sites ({args.indexes} indexes), CPU seconds per run; steady: median of {args.runs} "
          f"runs after {args.changes} changes each")
    print(f"{'query':34} {'cold':>8} {'steady':>8}")
    for name in names:
        runs = " ".join(f"{c:.3f}" for c in cost[name])
        print(f"{name:34} {cost[name][0]:8.3f} {statistics.median(cost[name][1:]):8.3f}   ({runs})")
    total_cold = sum(c[0] for c in cost.values())
    total = sum(statistics.median(c[1:]) for c in cost.values())
    print(f"{'total':34} {total_cold:8.3f} {total:8.3f}")
    for name, (on, fast, full) in journals.items():
        print(f"{name}: fast path {'on' if on else 'OFF'}, {fast} runs from the journal, {full} full reads; "
              f"last run {'equals' if same else 'DIFFERS from'} the full statement")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if errors:
        print("errors:", errors)
    return 1 if errors or not same else 0


def _series(pipeline: Pipeline, job: str) -> dict:
    """Every series of the job's last data, histograms as (counts, sum); sums to 9 significant digits."""
    out = {}
    for data in pipeline.snapshot.fresh_data(clock_of(pipeline)):
        for key, value in data.series.items():
            if hasattr(value, "counts"):
                value = (tuple(value.counts), float(f"{value.total:.9g}"))
            out[(data.name, key)] = value
    return {k: v for k, v in out.items() if k[0].startswith(("pipeline_site", "pipeline_sites"))}


def clock_of(pipeline: Pipeline) -> float:
    return pipeline.snapshot.clock()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
