"""Windowed gauges equal a plain count over the same rows: every family, every window, both
timestamp forms, rows exactly on a window's edge, ids slightly out of time order."""

from __future__ import annotations

import itertools
import random
from collections import Counter
from datetime import datetime, timezone

import pytest

from pipeline_exporter.config import KeySearch
from pipeline_exporter.db import Database
from pipeline_exporter.windows import first_key, month_start
from tests.support.sqlite import NOW_TS, ago, build_db, scrape

WINDOWS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 604800}
# Offsets around every edge: exactly on it (outside: a window is (now - w, now]), a second inside,
# a second outside.
OFFSETS = sorted({o for w in WINDOWS.values() for o in (w - 1, w, w + 1)} | {0, 30, 2_000_000}
                 | set(range(604_780, 604_860, 3)))  # dense around the oldest edge, where the key search cuts

# family -> (table, time column, {label: column}, summed column or None for a row count, row filter)
FAMILIES = {
    "pipeline_http_errors_recent": ("http_errors", "created_at",
                                    {"source": "source", "stage": "stage", "code": "status_code"}, None, None),
    "pipeline_opt_outs_recent": ("opt_outs", "created_at", {"channel": "channel"}, None, None),
    "pipeline_sales_recent": ("sales", "sold_at", {"channel": "channel"}, None, None),
    "pipeline_sales_revenue_usd_recent": ("sales", "sold_at", {"channel": "channel"}, "amount_usd", None),
    "pipeline_conversation_messages_recent": ("conversations", "created_at",
                                              {"channel": "channel", "direction": "direction"}, None, None),
    "pipeline_site_transitions_recent": ("site_status_history", "changed_at", {"to_status": "to_status"}, None, None),
    "pipeline_llm_cost_usd_recent": ("llm_usage", "created_at",
                                     {"stage": "stage", "provider": "provider", "model": "model"}, "cost_usd", None),
    "pipeline_outreach_sent_recent": ("outreaches", "sent_at", {"channel": "channel", "status": "status"}, None, None),
    "pipeline_outreach_replies_recent": ("outreaches", "replied_at", {"channel": "channel"}, None, None),
    "pipeline_cron_job_runs_recent": ("cron_job_logs", "finished_at", {"cron_job": "job_name", "status": "status"},
                                      None, lambda row: row["status"] != "running"),
}


def planted_rows(seed: int = 7) -> dict[str, list[dict]]:
    """Rows at every offset in both timestamp forms; ids follow time except small late commits."""
    rng = random.Random(seed)
    stamps = [(offset, iso) for offset in OFFSETS for iso in (False, True)]
    stamps.sort(key=lambda s: -s[0])  # oldest first: the order a pipeline appends in
    # Two rows commit late: their ids come after rows up to a minute younger (within the key slack).
    rows: dict[str, list[dict]] = {t: [] for t in
                                   ("http_errors", "opt_outs", "sales", "conversations", "site_status_history",
                                    "llm_usage", "outreaches", "cron_job_logs", "cron_jobs", "sites")}
    rows["sites"] = [{"id": 1, "domain": "a.example", "status": "found"}]
    rows["cron_jobs"] = [{"name": n, "description": "d", "interval_seconds": 60, "enabled": 1} for n in ("a", "b")]
    for n, (offset, iso) in enumerate(stamps):
        when = ago(offset, iso)
        # Every third status change committed 40 s after its time, behind younger ones: out of id order.
        late = ago(offset - 40, iso) if n % 3 == 0 and offset >= 40 else when
        pick = rng.choice
        rows["http_errors"].append({"source": pick(["scraper", "zenrows"]), "stage": pick(["fetch", "score"]),
                                    "status_code": pick([403, 429]), "url": "u", "created_at": when})
        rows["opt_outs"].append({"channel": pick(["sms", "email"]), "contact": "c", "created_at": when})
        rows["sales"].append({"site_id": 1, "channel": pick(["sms", "email"]),
                              "amount_usd": pick([0.1, 0.2, 19.99, 1234.56]), "sold_at": when})
        rows["conversations"].append({"site_id": 1, "channel": pick(["sms", "email"]),
                                      "direction": pick(["inbound", "outbound"]), "is_read": 0, "sender": "s",
                                      "body": "b", "created_at": when})
        rows["site_status_history"].append({"site_id": 1, "to_status": pick(["found", "scored"]), "changed_at": late})
        rows["llm_usage"].append({"stage": "scoring", "provider": pick(["a", "b"]), "model": "m", "prompt_tokens": 3,
                                  "completion_tokens": 1, "cost_usd": pick([0.000123, 0.1, 0.2]), "created_at": when})
        status = pick(["sent", "delivered", "bounced"])
        rows["outreaches"].append({"site_id": 1, "channel": pick(["sms", "email"]), "contact": "c", "status": status,
                                   "created_at": ago(offset + 60), "sent_at": when,
                                   "replied_at": when if rng.random() < 0.5 else None})
        rows["cron_job_logs"].append({"job_name": pick(["a", "b"]), "started_at": ago(offset + 5),
                                      "finished_at": when, "status": pick(["success", "failed", "running"])})
    return rows


def epoch(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T")).replace(
        tzinfo=timezone.utc).timestamp()


def expected(family: str, rows: dict[str, list[dict]], now: float) -> dict[tuple, float]:
    table, column, labels, summed, keep = FAMILIES[family]
    counts: Counter = Counter()
    groups = set()
    for row in rows[table]:
        if keep and not keep(row):
            continue
        ts = epoch(row[column])
        if ts is None or ts <= now - max(WINDOWS.values()) or ts > now:
            continue  # a window is (now - period, now]
        key = tuple(sorted((name, str(row[col])) for name, col in labels.items()))
        groups.add(key)
        for window, seconds in WINDOWS.items():
            if ts > now - seconds:
                counts[key + (("window", window),)] += row[summed] if summed else 1
    return {tuple(sorted(group + (("window", w),))): counts[group + (("window", w),)]
            for group in groups for w in WINDOWS}


def test_every_windowed_family_equals_a_plain_count_on_every_window_and_edge(tmp_path):
    rows = planted_rows()
    db = build_db(tmp_path / "sites.db", rows)
    fams = scrape(db)
    for family in FAMILIES:
        got = {tuple(sorted(s.labels.items())): s.value for s in fams[family].samples}
        want = expected(family, rows, NOW_TS)
        assert got.keys() == want.keys(), family
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-9), (family, key)
    tokens = {tuple(sorted(s.labels.items())): s.value for s in fams["pipeline_llm_tokens_recent"].samples}
    prompt_7d = sum(3 for row in rows["llm_usage"] if NOW_TS - WINDOWS["7d"] < epoch(row["created_at"]) <= NOW_TS)
    assert sum(v for k, v in tokens.items() if ("type", "prompt") in k and ("window", "7d") in k) == prompt_7d


def test_month_to_date_starts_at_the_first_instant_of_the_month_utc(tmp_path):
    start = month_start(NOW_TS)
    assert datetime.fromtimestamp(start, timezone.utc) == datetime(2026, 11, 1, tzinfo=timezone.utc)
    on_edge = datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    before = datetime.fromtimestamp(start - 1, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    usage = [{"stage": "s", "provider": "p", "model": "m", "prompt_tokens": 1, "completion_tokens": 1,
              "cost_usd": cost, "created_at": when}
             for cost, when in ((5.0, before), (0.1, on_edge), (0.2, ago(60, iso=True)), (0.000123, ago(1)))]
    fams = scrape(build_db(tmp_path / "sites.db", {"llm_usage": usage}))
    samples = {s.labels["provider"]: s.value for s in fams["pipeline_llm_cost_usd_month_to_date"].samples}
    assert samples == {"p": 0.300123}  # exact: summed in integer nano-dollars


@pytest.mark.parametrize("seed", range(5))
def test_the_key_search_finds_the_first_row_of_a_window_with_late_commits_inside_the_slack(tmp_path, seed):
    rng = random.Random(seed)
    times = sorted(rng.randrange(0, 100_000) for _ in range(rng.randrange(1, 400)))
    # Swap neighbours closer than 60 s: commits out of order by less than the slack.
    for i in range(len(times) - 1):
        if times[i + 1] - times[i] < 60 and rng.random() < 0.5:
            times[i], times[i + 1] = times[i + 1], times[i]
    ids = sorted(rng.sample(range(1, 10_000), len(times)))  # gaps in the ids: deleted or rolled-back rows
    rows = [{"id": i, "source": "s", "stage": "x", "status_code": 1, "url": "u",
             "created_at": ago(NOW_TS - (1_700_000_000 + t), iso=bool(i % 2))} for i, t in zip(ids, times)]
    db = Database(f"sqlite:///{build_db(tmp_path / 'sites.db', {'http_errors': rows})}")
    search = KeySearch("http_errors", "id", "created_at", slack=60)
    try:
        for target in itertools.chain(rng.sample(times, min(20, len(times))), [-5, 200_000]):
            key = db.read(lambda run: first_key(run, "sqlite", search, 1_700_000_000 + target - search.slack), 5)
            inside = [i for i, t in zip(ids, times) if t >= target]
            assert all(i >= key for i in inside), (target, key)  # no row of the window is before the key
    finally:
        db.close()


@pytest.mark.parametrize("query, metric, problem", [
    ("sql: SELECT 1 AS n, 0 AS t", "{name: demo_total, type: counter, help: N., value: n}",
     "queries.q.metrics[0]: counter demo_total must come from an incremental query"),
    ("windows: {time: t}\n    sql: SELECT 0 AS t FROM sales", "{name: demo_recent, type: gauge, help: N.}",
     "queries.q.sql: a windowed query reads only its oldest window"),
    ("windows: {time: t, periods: [15m, fortnight]}\n    sql: SELECT 0 AS t WHERE 0 >= :window_start",
     "{name: demo_recent, type: gauge, help: N.}", r"queries.q.windows.periods\[1\]: a period is a duration"),
    ("windows: {time: t, label: false}\n    sql: SELECT 0 AS t WHERE 0 >= :window_start",
     "{name: demo_recent, type: gauge, help: N.}", "queries.q.windows.label: several periods need a label"),
    ("windows: {time: t, key: {table: sales, time: sold_at}}\n    sql: SELECT 0 AS t WHERE 0 >= :window_start",
     "{name: demo_recent, type: gauge, help: N.}", "queries.q.sql: windows.key reads key ranges"),
    ("windows: {time: t}\n    sql: SELECT 0 AS t WHERE 0 >= :window_start",
     "{name: demo_recent_total, type: counter, help: N.}",
     "queries.q.metrics[0].type: a windowed query feeds gauges"),
    ("windows: {time: t, label: channel}\n    sql: SELECT 'a' AS channel, 0 AS t WHERE 0 >= :window_start",
     "{name: demo_recent, type: gauge, help: N., labels: [channel]}",
     r"queries.q.metrics\[0\].labels: label 'channel' appears twice"),
])
def test_window_and_counter_config_errors_name_the_key(tmp_path, query, metric, problem):
    from pipeline_exporter.config import load_config
    from pipeline_exporter.errors import ConfigError

    config = tmp_path / "config.yaml"
    config.write_text(f"packs: []\nqueries:\n  q:\n    {query}\n    metrics: [{metric}]\n")
    with pytest.raises(ConfigError, match=problem.replace("[0]", r"\[0\]")):
        load_config(config)


def test_check_config_refuses_a_windowed_query_without_its_time_column(tmp_path):
    from pipeline_exporter.cli import main

    config = tmp_path / "config.yaml"
    config.write_text("packs: []\nqueries:\n  q:\n    windows: {time: t}\n"
                      "    sql: SELECT channel, 0 AS tt FROM opt_outs WHERE 0 >= :window_start\n"
                      "    metrics: [{name: demo_recent, type: gauge, help: N., labels: [channel]}]\n")
    db = build_db(tmp_path / "sites.db", {})
    assert main(["--config.file", str(config), "--check-config", "--database-url", f"sqlite:///{db}"]) == 2


def test_windows_follow_a_living_table_run_after_run(tmp_path):
    """Buckets plus exact edges: at every run, over many runs with new rows, late commits, both
    timestamp forms and a clock off the minute, every window equals a plain count; a prune inside
    the windows is healed by the hourly recount."""
    import sqlite3

    from pipeline_exporter.app import Exporter, families

    rows = planted_rows(seed=3)
    db = build_db(tmp_path / "sites.db", {"http_errors": rows["http_errors"], "opt_outs": rows["opt_outs"]})
    clock = {"now": NOW_TS + 7.5}
    exporter = Exporter(None, {"database_url": f"sqlite:///{db}"}, clock=lambda: clock["now"])
    rng = random.Random(11)

    def check() -> None:
        exporter.pipeline.scheduler.run_job("http_errors_recent")
        exporter.pipeline.scheduler.run_job("opt_outs_recent")
        fams = families(exporter.registry)
        conn = sqlite3.connect(db)
        conn.row_factory = sqlite3.Row
        current = {table: [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]
                   for table in ("http_errors", "opt_outs")}
        conn.close()
        for family in ("pipeline_http_errors_recent", "pipeline_opt_outs_recent"):
            got = {tuple(sorted(s.labels.items())): s.value for s in fams[family].samples}
            assert got == expected(family, current, clock["now"]), (family, clock["now"])

    check()
    for _ in range(40):
        clock["now"] += rng.choice([13, 47, 61, 119, 600])
        conn = sqlite3.connect(db)
        with conn:
            for _ in range(rng.randrange(0, 6)):
                age = rng.choice([0, 1, 5, 30, 59, 61, 400])  # some committed behind younger rows
                when = time_text(clock["now"] - age, iso=rng.random() < 0.3)
                conn.execute("INSERT INTO http_errors (source, stage, status_code, url, created_at) "
                             "VALUES (?, 'fetch', ?, 'u', ?)", (rng.choice(["scraper", "zenrows"]),
                                                                 rng.choice([403, 429]), when))
                conn.execute("INSERT INTO opt_outs (channel, contact, created_at) VALUES ('sms', 'c', ?)", (when,))
        conn.close()
        check()
    # A prune inside the windows: healed by the hourly recount (the plain count says fewer).
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM http_errors WHERE id IN (SELECT id FROM http_errors ORDER BY id DESC LIMIT 3)")
    conn.close()
    clock["now"] += 3600
    check()


def time_text(moment: float, iso: bool = False) -> str:
    stamp = datetime.fromtimestamp(int(moment), timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M:%S")


def test_a_prune_reaching_into_the_windows_is_counted_again_at_once(tmp_path):
    import sqlite3

    from pipeline_exporter.app import Exporter, families

    rows = planted_rows(seed=5)
    middle = [{"source": "scraper", "stage": "fetch", "status_code": 403, "url": "u", "created_at": ago(days * 86400)}
              for days in (6, 5, 4, 3.5)]  # whole minutes well inside the 7d window
    errors = sorted(rows["http_errors"] + middle, key=lambda row: row["created_at"].replace("T", " "))
    db = build_db(tmp_path / "sites.db", {"http_errors": errors})
    clock = {"now": NOW_TS + 30}
    exporter = Exporter(None, {"database_url": f"sqlite:///{db}"}, clock=lambda: clock["now"])

    def got() -> dict:
        exporter.pipeline.scheduler.run_job("http_errors_recent")
        return {tuple(sorted(s.labels.items())): s.value
                for s in families(exporter.registry)["pipeline_http_errors_recent"].samples}

    got()
    with sqlite3.connect(db) as conn:  # a retention of two days: rows inside the 7d window go
        conn.execute("DELETE FROM http_errors WHERE CAST(strftime('%s', created_at) AS INTEGER) < ?",
                     (int(clock["now"]) - 2 * 86400,))
        left = [dict(zip(("source", "stage", "status_code", "created_at"), r)) for r in
                conn.execute("SELECT source, stage, status_code, created_at FROM http_errors")]
    clock["now"] += 15
    assert got() == expected("pipeline_http_errors_recent", {"http_errors": left}, clock["now"])


def test_the_same_period_twice_is_refused(tmp_path):
    from pipeline_exporter.config import load_config
    from pipeline_exporter.errors import ConfigError

    config = tmp_path / "config.yaml"
    config.write_text("packs: []\nqueries:\n  q:\n    windows: {time: t, periods: [1h, 60m]}\n"
                      "    sql: SELECT 0 AS t WHERE 0 >= :window_start\n"
                      "    metrics: [{name: demo_recent, type: gauge, help: N.}]\n")
    with pytest.raises(ConfigError, match=r"queries.q.windows.periods\[1\]: '60m' repeats a period"):
        load_config(config)
