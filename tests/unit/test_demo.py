"""The demo database generator: the contract's schema, realistic values, plantings, determinism."""

from __future__ import annotations

import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline_exporter.errors import DemoTargetNotEmpty
from pipeline_exporter.packs.method333.demo import (
    CRON_JOBS,
    FAILED_JOB,
    RUNNING_JOB,
    STALE_JOB,
    TABLES,
    build_demo,
    build_demo_url,
    write_demo_files,
)
from pipeline_exporter.packs.method333.sites import UNKNOWN_STATUSES
from tests.support.docs import database_tables

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
SITES = 2_000

# Column lists of docs/database.md, the pipeline database the exporter reads.
CONTRACT = {table: set(columns) for table, columns in database_tables().items()}
TIMESTAMPS = {
    "keywords": ("created_at",),
    "sites": ("status_changed_at", "created_at", "updated_at"),
    "site_status_history": ("changed_at",),
    "outreaches": ("created_at", "sent_at", "delivered_at", "replied_at"),
    "sales": ("sold_at",),
    "conversations": ("created_at",),
    "opt_outs": ("created_at",),
    "llm_usage": ("created_at",),
    "cron_job_logs": ("started_at", "finished_at"),
    "http_errors": ("created_at",),
}
FUNNEL = ["found", "scraped", "scored", "rescored", "proposal_ready", "contacted", "replied",
          "sold"]
PROCESSING = FUNNEL[:5]
CHANNELS = {"sms", "email", "form", "x", "linkedin"}
SQLITE_FORM = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
ISO_FORM = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def parse(text: str) -> datetime:
    """A demo timestamp in either accepted form, as aware UTC."""
    return datetime.fromisoformat(text.replace("Z", "").replace("T", " ")).replace(
        tzinfo=timezone.utc)


def age(text: str) -> timedelta:
    """How long before NOW a timestamp is."""
    return NOW - parse(text)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], Path]:
    """A 2,000-site demo database and its files: (database, returned counts, files folder)."""
    root = tmp_path_factory.mktemp("demo")
    counts = build_demo(root / "db" / "sites.db", sites=SITES, now=NOW, files_dir=root)
    return root / "db" / "sites.db", counts, root


@pytest.fixture(scope="module")
def db(built: tuple[Path, dict[str, int], Path]) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the small demo database."""
    conn = sqlite3.connect(f"file:{built[0]}?mode=ro", uri=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A 20,000-site demo (the default size) for checks that need volume."""
    path = tmp_path_factory.mktemp("demo-big") / "sites.db"
    build_demo(path, sites=20_000, now=NOW)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    yield conn
    conn.close()


def rows(conn: sqlite3.Connection, sql: str, *args: object) -> list[tuple]:
    """All rows of a query."""
    return conn.execute(sql, args).fetchall()


def one(conn: sqlite3.Connection, sql: str, *args: object) -> object:
    """The single value of a query."""
    return conn.execute(sql, args).fetchone()[0]


def values(conn: sqlite3.Connection, table: str, column: str) -> set:
    """Distinct values of a column."""
    return {v for (v,) in rows(conn, f"SELECT DISTINCT {column} FROM {table}")}


# ---------------------------------------------------------------- schema and file


def test_every_contract_table_and_column_exists(db: sqlite3.Connection) -> None:
    for table, columns in CONTRACT.items():
        found = {row[1] for row in rows(db, f"PRAGMA table_info({table})")}
        assert found == columns, table
    assert set(TABLES) == set(CONTRACT)


def test_foreign_keys_hold(db: sqlite3.Connection) -> None:
    assert rows(db, "PRAGMA foreign_key_check") == []


def test_file_is_in_wal_mode_and_no_temp_file_is_left(built: tuple[Path, dict[str, int], Path],
                                                      db: sqlite3.Connection) -> None:
    assert one(db, "PRAGMA journal_mode") == "wal"
    # -wal and -shm belong to the open reader; the build's temp file must be gone.
    assert {p.name for p in built[0].parent.iterdir()} <= {"sites.db", "sites.db-wal", "sites.db-shm"}
    assert one(db, "PRAGMA integrity_check") == "ok"


def test_build_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "sites.db"
    assert build_demo(path, sites=10, now=NOW)["sites"] == 10
    assert path.is_file()


def test_build_refuses_an_existing_file_without_force(tmp_path: Path) -> None:
    path = tmp_path / "sites.db"
    path.write_bytes(b"perhaps the real pipeline database")
    Path(f"{path}-wal").write_bytes(b"its wal")
    with pytest.raises(DemoTargetNotEmpty, match=rf"{re.escape(str(path))} already exists.*--force"):
        build_demo(path, sites=50, now=NOW)
    assert path.read_bytes() == b"perhaps the real pipeline database"
    assert Path(f"{path}-wal").read_bytes() == b"its wal"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sites.db", "sites.db-wal"], "no temp file left"


def test_build_with_force_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "sites.db"
    path.write_bytes(b"not a database")
    Path(f"{path}-wal").write_bytes(b"stale wal of the old file")
    counts = build_demo(path, sites=50, now=NOW, force=True)
    conn = sqlite3.connect(path)
    try:
        assert one(conn, "SELECT COUNT(*) FROM sites") == counts["sites"] == 50
    finally:
        conn.close()


def test_returned_counts_are_the_rows_written(built: tuple[Path, dict[str, int], Path],
                                              db: sqlite3.Connection) -> None:
    counts = built[1]
    assert set(counts) == set(CONTRACT)
    for table, n in counts.items():
        assert one(db, f"SELECT COUNT(*) FROM {table}") == n, table


def test_row_counts_follow_the_expected_ratios(built: tuple[Path, dict[str, int], Path]) -> None:
    counts = built[1]
    per_site = {t: n / SITES for t, n in counts.items()}
    assert counts["sites"] == SITES
    assert counts["keywords"] == SITES // 50
    assert 3.2 <= per_site["site_status_history"] <= 3.9
    assert 1.7 <= per_site["llm_usage"] <= 2.3
    assert 0.6 <= per_site["outreaches"] <= 0.9
    assert 0.7 <= per_site["conversations"] <= 1.1
    assert 0.45 <= per_site["http_errors"] <= 0.55
    assert 0 < counts["sales"] < counts["outreaches"] / 10
    assert 0 < counts["opt_outs"] < counts["outreaches"] / 10
    assert 10 <= counts["cron_jobs"] <= 14
    assert 1_000 < counts["cron_job_logs"] < 40_000


def test_keywords_are_at_least_twenty_with_some_without_location(tmp_path: Path) -> None:
    build_demo(tmp_path / "tiny.db", sites=10, now=NOW)
    conn = sqlite3.connect(tmp_path / "tiny.db")
    try:
        assert one(conn, "SELECT COUNT(*) FROM keywords") == 20
        assert one(conn, "SELECT COUNT(*) FROM sites") == 10
    finally:
        conn.close()


def test_same_seed_and_now_give_the_same_rows(tmp_path: Path) -> None:
    def dump(seed: int, name: str) -> list[str]:
        path = tmp_path / name
        build_demo(path, sites=300, seed=seed, now=NOW, force=True)  # a.db is built twice
        conn = sqlite3.connect(path)
        try:
            return [repr(rows(conn, f"SELECT * FROM {t} ORDER BY 1")) for t in TABLES]
        finally:
            conn.close()

    assert dump(7, "a.db") == dump(7, "b.db")
    assert dump(7, "a.db") != dump(8, "c.db")


# ---------------------------------------------------------------- timestamps


def test_timestamps_use_sqlite_form_with_about_two_percent_iso(db: sqlite3.Connection) -> None:
    forms: Counter[str] = Counter()
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            for (text,) in rows(db, f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
                form = "sqlite" if SQLITE_FORM.match(text) else "iso" if ISO_FORM.match(text) else text
                forms[form] += 1
    assert set(forms) == {"sqlite", "iso"}
    assert 0.01 < forms["iso"] / sum(forms.values()) < 0.04


def test_history_covers_45_days_and_nothing_is_in_the_future(db: sqlite3.Connection) -> None:
    ages = [age(t) for (t,) in rows(db, "SELECT changed_at FROM site_status_history")]
    assert min(ages) >= timedelta(0)
    assert timedelta(days=40) < max(ages) <= timedelta(days=45, minutes=1)


# ---------------------------------------------------------------- sites and history


def test_sites_spread_over_the_funnel_with_a_few_unknown_statuses(db: sqlite3.Connection) -> None:
    by_status = dict(rows(db, "SELECT status, COUNT(*) FROM sites GROUP BY status"))
    assert set(FUNNEL + ["excluded"]) <= set(by_status)
    unknown = set(by_status) - set(FUNNEL) - {"excluded"}
    assert unknown and unknown <= set(UNKNOWN_STATUSES)
    assert 0 < sum(by_status[s] for s in unknown) < SITES / 100
    assert 0.07 < by_status["excluded"] / SITES < 0.13
    assert by_status["contacted"] > by_status["replied"] > by_status["sold"]


def test_some_sites_have_active_errors_with_urls(db: sqlite3.Connection) -> None:
    errors = rows(db, "SELECT error_type, error_message, domain FROM sites WHERE error_type IS NOT NULL")
    assert 0.05 < len(errors) / SITES < 0.11
    assert {"http_403", "http_429", "timeout", "parse_error", "llm_error"} <= {e[0] for e in errors}
    assert all(domain in message for _, message, domain in errors)
    assert sum("https://" in message for _, message, _ in errors) > len(errors) / 2
    assert one(db, "SELECT COUNT(*) FROM sites WHERE error_type IS NULL AND error_message IS NOT NULL") == 0


def test_processing_sites_are_partly_stuck_and_partly_fresh(db: sqlite3.Connection) -> None:
    marks = ",".join("?" * len(PROCESSING))
    ages = [age(t) for (t,) in rows(db, f"SELECT status_changed_at FROM sites WHERE status IN ({marks})",
                                    *PROCESSING)]
    stuck = sum(a > timedelta(hours=24) for a in ages)
    assert 0.15 < stuck / len(ages) < 0.6


def test_domains_scores_and_keywords_look_real(db: sqlite3.Connection) -> None:
    domains = [d for (d,) in rows(db, "SELECT domain FROM sites")]
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*-\d+\.example", d) for d in domains)
    assert len(set(domains)) == len(domains)
    assert one(db, "SELECT COUNT(*) FROM sites WHERE score < 0 OR score > 100") == 0
    assert 0 < one(db, "SELECT COUNT(*) FROM sites WHERE score IS NULL") < SITES
    assert 0 < one(db, "SELECT COUNT(*) FROM keywords WHERE location IS NULL") < SITES // 50
    assert one(db, "SELECT COUNT(*) FROM sites WHERE keyword_id NOT IN (SELECT id FROM keywords)") == 0


def test_history_follows_each_sites_path(db: sqlite3.Connection) -> None:
    current = dict(rows(db, "SELECT id, status FROM sites"))
    changed = dict(rows(db, "SELECT id, status_changed_at FROM sites"))
    paths: dict[int, list[tuple]] = {}
    for site_id, from_status, to_status, at in rows(
            db, "SELECT site_id, from_status, to_status, changed_at FROM site_status_history ORDER BY id"):
        paths.setdefault(site_id, []).append((from_status, to_status, parse(at)))
    assert set(paths) == set(current)
    for site_id, steps in paths.items():
        assert steps[0][0] is None
        assert all(a[1] == b[0] for a, b in zip(steps, steps[1:])), site_id
        assert all(a[2] < b[2] for a, b in zip(steps, steps[1:])), site_id
        assert steps[-1][1] == current[site_id]
        assert steps[-1][2] == parse(changed[site_id])
        funnel_part = [s[1] for s in steps if s[1] in FUNNEL]
        assert funnel_part == FUNNEL[:len(funnel_part)], site_id


# ---------------------------------------------------------------- outreach, sales, messages


def test_outreach_values_are_in_the_contract_sets(db: sqlite3.Connection) -> None:
    assert values(db, "outreaches", "channel") == CHANNELS
    assert values(db, "outreaches", "status") == {"queued", "sent", "delivered", "bounced",
                                                 "failed", "complained"}
    by_channel = dict(rows(db, "SELECT channel, COUNT(*) FROM outreaches GROUP BY channel"))
    assert sorted(by_channel, key=by_channel.get)[-2:] in (["sms", "email"], ["email", "sms"])


def test_outreach_timestamps_match_the_status(db: sqlite3.Connection) -> None:
    def count(where: str) -> object:
        return one(db, f"SELECT COUNT(*) FROM outreaches WHERE {where}")

    assert count("status = 'queued' AND sent_at IS NOT NULL") == 0
    assert count("status != 'queued' AND sent_at IS NULL") == 0
    assert count("status IN ('bounced', 'failed') AND delivered_at IS NOT NULL") == 0
    assert count("status = 'complained' AND (delivered_at IS NULL OR channel != 'email')") == 0
    assert count("status = 'delivered' AND delivered_at IS NULL") == 0
    for created, sent, delivered, replied in rows(
            db, "SELECT created_at, sent_at, delivered_at, replied_at FROM outreaches WHERE sent_at IS NOT NULL"):
        assert parse(created) <= parse(sent)
        assert delivered is None or parse(sent) < parse(delivered)
        assert replied is None or parse(sent) < parse(replied)


def test_outreach_rates_are_realistic(big: sqlite3.Connection) -> None:
    rate = dict(rows(big, """SELECT channel || ':' || status, 1.0 * COUNT(*) / SUM(COUNT(*)) OVER (PARTITION BY channel)
                             FROM outreaches WHERE sent_at IS NOT NULL GROUP BY channel, status"""))
    assert 0.02 < rate["email:bounced"] < 0.07
    assert 0.0005 < rate["email:complained"] < 0.005
    assert 0.025 < rate["sms:failed"] < 0.055
    replied = dict(rows(big, """SELECT channel, AVG(replied_at IS NOT NULL) FROM outreaches
                                WHERE sent_at IS NOT NULL GROUP BY channel"""))
    assert all(0.04 < share < 0.16 for share in replied.values()), replied
    assert one(big, "SELECT COUNT(*) FROM outreaches WHERE status = 'queued'") > 10


def test_one_recent_day_has_a_visibly_bad_bounce_rate(big: sqlite3.Connection) -> None:
    daily = {}
    for sent, bounced in rows(big, "SELECT sent_at, status = 'bounced' FROM outreaches "
                                   "WHERE channel = 'email' AND sent_at IS NOT NULL"):
        days_ago = (NOW.date() - parse(sent).date()).days
        daily.setdefault(days_ago, []).append(bounced)
    ratio = {d: sum(b) / len(b) for d, b in daily.items() if len(b) > 50}
    assert max(ratio[d] for d in (1, 2)) > 0.09
    assert sorted(ratio.values())[len(ratio) // 2] < 0.06


def test_contacts_look_like_personal_data(db: sqlite3.Connection) -> None:
    pattern = {"email": r"[a-z]+\.[a-z]+\d+@example\.com", "form": r"[a-z]+\.[a-z]+\d+@example\.com",
               "sms": r"\+1555\d{7}", "x": r"@[a-z]+\d+",
               "linkedin": r"https://www\.linkedin\.com/in/[a-z]+-[a-z]+-\d+"}
    for channel, contact in rows(db, "SELECT channel, contact FROM outreaches"):
        assert re.fullmatch(pattern[channel], contact), contact


def test_sales_come_from_sold_sites_and_fill_the_histogram(db: sqlite3.Connection,
                                                           big: sqlite3.Connection) -> None:
    assert one(db, "SELECT COUNT(*) FROM sales") == one(db, "SELECT COUNT(*) FROM sites WHERE status = 'sold'")
    assert one(db, "SELECT COUNT(*) FROM sales s JOIN sites t ON t.id = s.site_id WHERE t.status != 'sold'") == 0
    amounts = [a for (a,) in rows(big, "SELECT amount_usd FROM sales")]
    assert min(amounts) >= 99 and max(amounts) <= 9_999
    bounds = [100, 250, 500, 1000, 2500, 5000, 10000]
    assert {next(b for b in bounds if a <= b) for a in amounts} == set(bounds)
    linked = one(big, "SELECT AVG(outreach_id IS NOT NULL) FROM sales")
    assert 0.75 < linked < 1
    assert values(big, "sales", "channel") <= CHANNELS


def test_conversations_have_both_directions_and_unread_of_each_sentiment(db: sqlite3.Connection) -> None:
    assert values(db, "conversations", "direction") == {"inbound", "outbound"}
    assert values(db, "conversations", "channel") <= CHANNELS
    assert one(db, "SELECT COUNT(*) FROM conversations WHERE direction = 'outbound' AND sentiment IS NOT NULL") == 0
    inbound = rows(db, "SELECT sentiment, is_read, COUNT(*) FROM conversations "
                       "WHERE direction = 'inbound' GROUP BY 1, 2")
    seen = {(s, r) for s, r, _ in inbound}
    for sentiment in ("positive", "neutral", "negative", "objection", None):
        assert (sentiment, 0) in seen and (sentiment, 1) in seen, sentiment
    assert values(db, "conversations", "is_read") == {0, 1}
    assert one(db, "SELECT COUNT(*) FROM conversations WHERE sender IS NULL OR body IS NULL") == 0


def test_every_replied_site_has_an_inbound_message(db: sqlite3.Connection) -> None:
    missing = one(db, """SELECT COUNT(*) FROM sites s WHERE s.status IN ('replied', 'sold')
                         AND NOT EXISTS (SELECT 1 FROM conversations c
                                         WHERE c.site_id = s.id AND c.direction = 'inbound')""")
    assert missing == 0


def test_opt_outs_are_email_and_sms(db: sqlite3.Connection) -> None:
    assert values(db, "opt_outs", "channel") == {"email", "sms"}


def test_llm_usage_is_realistic(db: sqlite3.Connection) -> None:
    assert values(db, "llm_usage", "stage") == {"scoring", "rescoring", "proposals", "replies"}
    assert values(db, "llm_usage", "provider") == {"openrouter", "anthropic", "openai"}
    assert 3 <= len(values(db, "llm_usage", "model")) <= 10
    low, high = rows(db, "SELECT MIN(cost_usd), MAX(cost_usd) FROM llm_usage")[0]
    assert 0 < low < 0.01 and 0.01 < high < 0.1
    assert one(db, "SELECT COUNT(*) FROM llm_usage WHERE prompt_tokens <= 0 OR completion_tokens <= 0") == 0


# ---------------------------------------------------------------- cron jobs


def test_cron_jobs_are_described_with_sane_intervals(db: sqlite3.Connection) -> None:
    jobs = rows(db, "SELECT name, description, interval_seconds, enabled FROM cron_jobs")
    assert len(jobs) == len(CRON_JOBS)
    assert all(description and 60 <= interval <= 86_400 for _, description, interval, _ in jobs)
    assert sorted(enabled for *_, enabled in jobs).count(0) == 1
    assert values(db, "cron_job_logs", "status") == {"running", "success", "failed"}


def test_cron_plantings_relative_to_now(db: sqlite3.Connection) -> None:
    interval = dict(rows(db, "SELECT name, interval_seconds FROM cron_jobs"))
    enabled = {n for (n,) in rows(db, "SELECT name FROM cron_jobs WHERE enabled = 1")}
    logs = rows(db, "SELECT job_name, started_at, finished_at, status, duration_ms FROM cron_job_logs")
    latest_finished: dict[str, tuple[datetime, str]] = {}
    last_start: dict[str, datetime] = {}
    for job, started, finished, status, duration in logs:
        last_start[job] = max(last_start.get(job, parse(started)), parse(started))
        assert age(started) < timedelta(days=7, minutes=5)
        if finished is None:
            assert (status, duration) == ("running", None)
            continue
        assert duration is not None and parse(finished) <= NOW
        if job not in latest_finished or parse(started) > latest_finished[job][0]:
            latest_finished[job] = (parse(started), status)
    failing = {job for job, (_, status) in latest_finished.items() if status == "failed"}
    assert failing == {FAILED_JOB}
    stale = {job for job in enabled if NOW - last_start[job] > timedelta(seconds=2 * interval[job])}
    assert stale == {STALE_JOB}
    running = [job for job, _, finished, *_ in logs if finished is None]
    assert running == [RUNNING_JOB]
    durations = [d for (d,) in rows(db, "SELECT duration_ms FROM cron_job_logs WHERE duration_ms IS NOT NULL")]
    assert min(durations) < 5_000 and max(durations) > 60_000


def test_cron_runs_follow_each_interval(db: sqlite3.Connection) -> None:
    for name, interval in rows(db, "SELECT name, interval_seconds FROM cron_jobs WHERE enabled = 1"):
        runs = one(db, "SELECT COUNT(*) FROM cron_job_logs WHERE job_name = ?", name)
        expected = 7 * 86_400 / interval
        assert 0.9 * expected - 2 <= runs <= expected + 1, name


# ---------------------------------------------------------------- http errors


def test_http_errors_have_contract_sources_and_bursts(db: sqlite3.Connection) -> None:
    assert values(db, "http_errors", "source") == {"scraper", "zenrows", "openrouter", "resend",
                                                  "twilio"}
    assert values(db, "http_errors", "status_code") == {403, 429, 500, 503}
    assert one(db, "SELECT COUNT(*) FROM http_errors WHERE stage IS NULL OR url NOT LIKE 'https://%'") == 0
    recent: Counter[tuple[str, int, str]] = Counter()
    oldest = timedelta(0)
    for source, code, created in rows(db, "SELECT source, status_code, created_at FROM http_errors"):
        ago = age(created)
        assert ago >= timedelta(0)
        oldest = max(oldest, ago)
        if ago <= timedelta(hours=1):
            recent[source, code, "1h"] += 1
        if ago <= timedelta(minutes=15):
            recent[source, code, "15m"] += 1
    assert recent["scraper", 403, "1h"] > 30
    assert recent["openrouter", 429, "15m"] > 15
    assert timedelta(days=29) < oldest <= timedelta(days=30)


# ---------------------------------------------------------------- coverage and JUnit files


def test_coverage_summary_is_istanbul_json_with_lines_near_68_percent(
        built: tuple[Path, dict[str, int], Path]) -> None:
    summary = json.loads((built[2] / "coverage" / "coverage-summary.json").read_text())
    total = summary.pop("total")
    assert set(total) == {"lines", "statements", "functions", "branches"}
    for block in total.values():
        assert set(block) == {"total", "covered", "skipped", "pct"}
        assert block["pct"] == pytest.approx(100 * block["covered"] / block["total"], abs=0.01)
    assert 66 <= total["lines"]["pct"] < 70
    assert len(summary) >= 3
    assert sum(f["lines"]["total"] for f in summary.values()) == total["lines"]["total"]


def test_junit_report_has_the_four_suites_and_one_failure(
        built: tuple[Path, dict[str, int], Path]) -> None:
    root = ET.parse(built[2] / "test-results" / "e2e-junit.xml").getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["Email", "SMS", "Inbound", "Full Pipeline"]
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases) > 0
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in cases)
        assert float(suite.get("time")) > 0
    failures = root.findall(".//failure")
    assert len(failures) == 1 and failures[0].get("message")
    assert int(root.get("failures")) == 1


def test_demo_files_are_deterministic_and_dated_before_now(tmp_path: Path) -> None:
    write_demo_files(tmp_path / "a", seed=5, now=NOW)
    write_demo_files(tmp_path / "b", seed=5, now=NOW)
    for name in ("coverage/coverage-summary.json", "test-results/e2e-junit.xml"):
        a, b = tmp_path / "a" / name, tmp_path / "b" / name
        assert a.read_bytes() == b.read_bytes()
        assert timedelta(0) < NOW - datetime.fromtimestamp(a.stat().st_mtime, timezone.utc) < timedelta(hours=3)


def test_sqlite_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="build_demo"):
        build_demo_url("sqlite:///demo.db", sites=10, now=NOW)


def test_demo_db_command_refuses_an_existing_file_and_overwrites_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline_exporter.cli import main

    path = tmp_path / "sites.db"
    path.write_bytes(b"the real pipeline database")
    assert main(["demo-db", str(path), "--sites", "10"]) == 2
    error = capsys.readouterr().err
    assert f"pipeline-exporter demo-db: {path} already exists" in error and "--force" in error
    assert path.read_bytes() == b"the real pipeline database"
    assert main(["demo-db", str(path), "--sites", "10", "--force"]) == 0
    assert "demo database written to" in capsys.readouterr().out
    conn = sqlite3.connect(path)
    try:
        assert one(conn, "SELECT COUNT(*) FROM sites") == 10
    finally:
        conn.close()
