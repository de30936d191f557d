"""Is `$scan(table)` (SQLite: NOT INDEXED) still worth it, per query and per data shape?

Not part of the test suite: run `.venv/bin/python bench/bench_scan.py [--sites 100000] [--shapes demo,shuffled]`.
For every pack query that uses `$scan`, on bench_perf.py's cached databases, the CPU seconds (process
time, best of --repeat (5), the two variants alternated) of the statements the exporter runs: for a counter
its steady read (the newest 2,000 ids; for a time key, the last hour) and its hourly recount (every
row); for any other query its one statement; with the hint and with the planner's own plan, and
that plan (EXPLAIN QUERY PLAN).
"""

from __future__ import annotations

import argparse
import math
import re
import sqlite3
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_perf import NOW, Hints, config_for, shaped_db  # noqa: E402

from pipeline_exporter.sql import last_keys_sql, statements  # noqa: E402

REPEAT = 5


def bound_params(sql: str, params: dict) -> dict:
    return {k: v for k, v in params.items() if re.search(rf":{k}\b", sql)}


def plan_of(conn: sqlite3.Connection, sql: str, params: dict) -> str:
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return "; ".join(row[-1] for row in rows if row[-1].startswith(("SCAN", "SEARCH")))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100_000)
    parser.add_argument("--shapes", default="demo,shuffled")
    parser.add_argument("--repeat", type=int, default=REPEAT)
    args = parser.parse_args(argv)
    print("| shape | query | statement | $scan | planner | planner's plan |\n|---|---|---|---|---|---|")
    for shape in args.shapes.split(","):
        db = shaped_db(args.sites, shape)
        config = config_for(db)
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        now = NOW.timestamp()
        for query in config.queries:
            if "$scan" not in query.sql_for("sqlite"):
                continue
            variants = {}
            for hinted in (True, False):
                with Hints(hinted):
                    variants[hinted] = [last_keys_sql(sql, 1) for sql in statements(query, "sqlite")]
            cases = [("run", None)]
            if query.incremental is not None:
                table = re.search(r"\$scan\((\w+)\)", query.sql_for("sqlite")).group(1)
                top = conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0] or 0
                steady = now - 3600 if query.incremental.time else top - 2000
                cases = [("steady", steady), ("recount", -1)]
            for label, key in cases:
                params = {**config.parameters, "now": now, "last_key": key, "pe_last_key_0": key}
                best = {True: math.inf, False: math.inf}
                for _ in range(args.repeat):
                    for hinted in (True, False):
                        t0 = time.process_time()
                        for sql in variants[hinted]:
                            conn.execute(sql, bound_params(sql, params)).fetchall()
                        best[hinted] = min(best[hinted], time.process_time() - t0)
                sql = variants[False][0]
                print(f"| {shape} | {query.name} | {label} | {best[True] * 1000:.1f} ms | {best[False] * 1000:.1f} ms "
                      f"| {plan_of(conn, sql, bound_params(sql, params))} |", flush=True)
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
