"""Unknown is a state (issue 21): a windowed family's label set whose events all left the windows
is still exported as 0 until it has been unseen for the query's longest window, on a real SQLite
database across runs of the exporter."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipeline_exporter.app import Exporter, families
from pipeline_exporter.config import load_config
from pipeline_exporter.seen import MONTH_SECONDS, keeps
from tests.support.sqlite import NOW_TS, ago, build_db

DAY = 86400.0
WINDOWS = ("15m", "1h", "24h", "7d")


def series(exporter: Exporter, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in families(exporter.registry)[family].samples}


def key(source: str, code: str, window: str) -> tuple[tuple[str, str], ...]:
    return (("code", code), ("source", source), ("stage", "fetch"), ("window", window))


def test_a_label_set_stays_at_zero_for_the_longest_window_after_its_events_left(tmp_path: Path) -> None:
    db = build_db(tmp_path / "sites.db", {"http_errors": [
        # in time order, as a pipeline appends them (the windows' key search relies on it)
        {"source": "api", "stage": "fetch", "status_code": 429, "url": "u", "created_at": ago(2 * DAY)},
        {"source": "scraper", "stage": "fetch", "status_code": 403, "url": "u", "created_at": ago(1800)},
    ]})
    clock = {"now": NOW_TS}
    exporter = Exporter(None, {"database_url": f"sqlite:///{db}", "coverage": tmp_path / "none.json",
                               "e2e_report": tmp_path / "none.xml"}, clock=lambda: clock["now"])

    def run(at: float) -> dict[tuple[tuple[str, str], ...], float]:
        clock["now"] = at
        exporter.pipeline.scheduler.run_job("http_errors_recent")
        return series(exporter, "pipeline_http_errors_recent")

    first = run(NOW_TS)
    assert first[key("scraper", "403", "1h")] == 1 and first[key("scraper", "403", "15m")] == 0
    assert first[key("api", "429", "7d")] == 1 and first[key("api", "429", "24h")] == 0
    # The 403 is still in the 7-day window a minute before it leaves: the engine exports it. The
    # 429 left the 7-day window at NOW + 5 d: no row in SQL, yet a 0 series in every window.
    last_seen = NOW_TS + 7 * DAY - 1800 - 60
    both = run(last_seen)
    assert both[key("scraper", "403", "7d")] == 1
    assert all(both[key("api", "429", w)] == 0 for w in WINDOWS)
    # The 403 has left every window too: still a 0 series in each. The 429 was last exported at
    # NOW, more than the longest window (7 d) ago: forgotten.
    gone = run(NOW_TS + 8 * DAY)
    assert gone == {key("scraper", "403", w): 0.0 for w in WINDOWS}
    # A new event of another label set is exported as counted, beside the zeros.
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO http_errors (source, stage, status_code, url, created_at) "
                     "VALUES ('api', 'fetch', 503, 'u', datetime(?, 'unixepoch'))", (NOW_TS + 8 * DAY + 60,))
    conn.close()
    mixed = run(NOW_TS + 8 * DAY + 120)
    assert mixed[key("api", "503", "15m")] == 1 and mixed[key("scraper", "403", "15m")] == 0
    # A reload keeps the memory (the snapshot's job states are adopted).
    assert exporter.reload()
    assert run(last_seen + 7 * DAY - 60)[key("scraper", "403", "24h")] == 0
    # Unseen for longer than the longest window: the series is gone.
    assert key("scraper", "403", "24h") not in run(last_seen + 7 * DAY + 60)
    assert run(last_seen + 7 * DAY + 60)[key("api", "503", "7d")] == 1


def test_only_summed_windowed_gauges_keep_zeros_for_their_longest_window() -> None:
    kept = keeps(load_config(None).queries)
    assert kept["http_errors_recent"].seconds == 7 * DAY
    assert kept["llm_cost_month_to_date"].seconds == MONTH_SECONDS  # a calendar month, at its longest
    assert kept["outreach_sent_recent"].metrics == {"pipeline_outreach_sent_recent"}
    assert "sites" not in kept and "cron_job_durations" not in kept  # plain gauges and histograms: as SQL says
