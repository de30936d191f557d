"""Before/after of the one read of `sites` (issue 24): the three statements the pack ran before
(sites, site_status_age bucketed in SQL, site_status_age_quantiles) against the one `sites`
statement now, alternating, process CPU seconds (min and median of ``--rounds``).

`.venv/bin/python bench/bench_sites_ab.py [--sites 100000] [--rounds 5]`; the old pack is read from
git (the commit before the merge)."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_perf import NOW, OUT, config_for, demo_db  # noqa: E402

from pipeline_exporter.sql import statements  # noqa: E402

BEFORE = "5be516d"
PACK = REPO / "pipeline_exporter" / "packs" / "method333" / "pack.yaml"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    cached = OUT / f"demo-{args.sites}-plausible.db"
    db = cached if cached.exists() else demo_db(args.sites)
    new = config_for(db)
    current = PACK.read_text()
    try:
        PACK.write_text(subprocess.run(["git", "show", f"{BEFORE}:{PACK.relative_to(REPO)}"], cwd=REPO, check=True,
                                       capture_output=True, text=True).stdout)
        old = config_for(db)
    finally:
        PACK.write_text(current)
    pick = {"before": [q for q in old.queries if q.name in ("sites", "site_status_age", "site_status_age_quantiles")],
            "after": [q for q in new.queries if q.name == "sites"]}
    params = {**new.parameters, "now": NOW.timestamp()}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    cost: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.rounds):
        for side, queries in pick.items():
            t0 = time.process_time()
            for query in queries:
                for sql in statements(query, "sqlite"):
                    conn.execute(sql, {k: v for k, v in params.items() if f":{k}" in sql}).fetchall()
            cost[side].append(time.process_time() - t0)
    conn.close()
    print(f"{args.sites:,} sites: CPU seconds per run of every sites statement (min / median of {args.rounds})")
    for side, values in cost.items():
        names = ", ".join(q.name for q in pick[side])
        print(f"  {side:6} {min(values):7.3f} {statistics.median(values):7.3f}   ({names})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
