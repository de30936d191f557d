"""What the windowed gauges and the incremental counters cost, at 100k and 1M sites.

Not part of the test suite: run `.venv/bin/python bench/bench_windows.py [--sizes 100000,1000000]`.
For each windowed query of the default pack: the median time of one run (key search + the one
statement for all windows), its cost per minute at the pack's interval, and the same query read
without the key range (`:window_key` dropped: a scan of the table filtered on the timestamp), to
show what the key search saves. For each counter query: the median steady-state run (events of the
last settle_after, plus the settle statement when due). Demo databases are cached under bench/out/.
Prints a table; the 1M / 100k ratio says whether a cost follows the window (about 1x per window
size, here ~10x more rows per window at 1M) or the table.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline_exporter.config import load_config  # noqa: E402
from pipeline_exporter.db import Database  # noqa: E402
from pipeline_exporter.jobs import query_job  # noqa: E402
from pipeline_exporter.memory import Memory  # noqa: E402
from pipeline_exporter.packs.method333.demo import build_demo  # noqa: E402

OUT = REPO / "bench" / "out"
NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
RUNS = 5


def demo_db(sites: int) -> Path:
    """The cached demo database of that size (ids in time order: the chronological demo)."""
    cached = OUT / f"demo-{sites}-chrono.db"
    if not cached.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"building demo database with {sites:,} sites ...", flush=True)
        build_demo(cached, sites=sites, seed=333, now=NOW)
    return cached


def timed_runs(job, start: float, step: float, runs: int) -> list[float]:
    """Seconds of ``runs`` runs of a job at start, start + step, ..."""
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        job.run(start + i * step)
        times.append(time.perf_counter() - t0)
    return times


def without_key(query):
    """The same windowed query read by its timestamp alone (no key range, no key search)."""
    keyed = re.compile(r"\bid >= :window_key AND id < :window_key_end AND\s+")
    sql = {d: keyed.sub("", text) for d, text in query.sql.items()}
    return replace(query, name=query.name + "_nokey", sql=sql,
                   windows=replace(query.windows, key=None))


def measure(sites: int) -> dict[str, dict[str, float]]:
    db_path = demo_db(sites)
    config = load_config(None, {"database_url": f"sqlite:///{db_path}"})
    db = Database(config.database_url)
    now = NOW.timestamp()
    params = dict(config.parameters)
    out: dict[str, dict[str, float]] = {}
    try:
        for query in config.queries:
            if query.windows is not None:
                job = query_job(query, db, params, Memory())
                first = timed_runs(job, now, 0.0, 1)[0]  # bucketed windows: the first run reads the oldest window
                run = statistics.median(timed_runs(job, now + query.interval, query.interval, RUNS))
                row = {"kind": "window", "interval": query.interval, "run": run, "first": first}
                if query.windows.key is not None:
                    plain = query_job(without_key(query), db, params, Memory())
                    row["nokey"] = statistics.median(timed_runs(plain, now, 0.0, RUNS))
                    key = query.windows.key
                    oldest = now - max(seconds or 31 * 86400 for _, seconds in query.windows.periods)
                    row["rows"] = db.fetch([f"SELECT COUNT(*) FROM {key.table}"], {}, 600)[0].rows[0][0]
                    row["window_rows"] = db.fetch(
                        [f"SELECT COUNT(*) FROM {key.table} WHERE CAST(strftime('%s', {key.time}) AS INTEGER) >= :t"],
                        {"t": oldest}, 600)[0].rows[0][0]
                out[query.name] = row
            elif query.incremental is not None:
                job = query_job(query, db, params, Memory())
                first = timed_runs(job, now, 0.0, 1)[0]
                # Steady state: runs at the query's interval, past the first settle_after.
                after = query.incremental.settle_after
                job.run(now + after)
                steady = timed_runs(job, now + after + query.interval, query.interval, RUNS)
                out[query.name] = {"kind": "counter", "interval": query.interval, "run": statistics.median(steady),
                                   "first": first}
    finally:
        db.close()
    return out


def report(results: dict[int, dict[str, dict[str, float]]]) -> str:
    sizes = sorted(results)
    small, large = sizes[0], sizes[-1]
    lines = ["| query | kind | interval | " + " | ".join(f"run at {s // 1000}k" for s in sizes)
             + f" | {large // 1000}k / {small // 1000}k | cost per minute at {large // 1000}k"
             + f" | without key range at {large // 1000}k | oldest window / table rows at {large // 1000}k |",
             "|---|---|---|" + "---|" * len(sizes) + "---|---|---|---|"]
    totals = {s: 0.0 for s in sizes}
    for name, row in results[large].items():
        per_minute = row["run"] * 60 / row["interval"]
        for s in sizes:
            totals[s] += results[s][name]["run"] * 60 / row["interval"]
        cells = " | ".join(f"{results[s][name]['run'] * 1000:.1f} ms" for s in sizes)
        ratio = row["run"] / max(results[small][name]["run"], 1e-9)
        nokey = f"{row['nokey'] * 1000:.1f} ms" if "nokey" in row else "-"
        share = f"{row['window_rows']:,} / {row['rows']:,}" if "rows" in row else "-"
        lines.append(f"| {name} | {row['kind']} | {row['interval']:g} s | {cells} | {ratio:.1f}x "
                     f"| {per_minute:.3f} s | {nokey} | {share} |")
    lines.append("| **all of the above** | | | " + " | ".join(f"{totals[s]:.2f} s/min" for s in sizes)
                 + f" | {totals[large] / max(totals[small], 1e-9):.1f}x | {totals[large]:.2f} s | | |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    args = parser.parse_args(argv)
    results = {int(s): measure(int(s)) for s in args.sizes.split(",")}
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
