"""Time the demo database build at 100k and 1M sites; prints seconds and rows per second.

Not part of the test suite: run `.venv/bin/python bench/bench_demo.py [SITES ...]`.
The target is a 1M-site SQLite build in under two minutes on a 2-core machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from pipeline_exporter.packs.method333.demo import build_demo

DEFAULT_SIZES = (100_000, 1_000_000)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def bench(sites: int, folder: Path) -> tuple[float, int, int]:
    """Build one database; return seconds, rows written and file size in bytes."""
    path = folder / f"sites-{sites}.db"
    started = time.perf_counter()
    counts = build_demo(path, sites=sites, now=NOW, force=True)  # our temp folder: a size given twice rebuilds
    seconds = time.perf_counter() - started
    return seconds, sum(counts.values()), path.stat().st_size


def main(argv: list[str]) -> int:
    """Run the builds in a temp folder and print one line per size."""
    sizes = [int(arg) for arg in argv] or list(DEFAULT_SIZES)
    print(f"{'sites':>10} {'rows':>11} {'seconds':>8} {'rows/s':>9} {'sites/s':>8} {'MiB':>7}")
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        for sites in sizes:
            seconds, rows, size = bench(sites, Path(tmp))
            print(f"{sites:>10,} {rows:>11,} {seconds:>8.1f} {rows / seconds:>9,.0f} "
                  f"{sites / seconds:>8,.0f} {size / 2**20:>7.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
