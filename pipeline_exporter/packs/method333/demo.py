"""Build a realistic, deterministic demo of the pipeline database (SQLite, PostgreSQL, MySQL).

One stream of rows (``iter_demo_rows``) feeds two thin writers: a fast sqlite3 writer and a
SQLAlchemy writer for PostgreSQL and MySQL/MariaDB. Timestamps are generated as Unix seconds
relative to ``now`` and turned into each backend's form by a ``stamp`` function.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import accumulate, count, islice
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import make_url

from pipeline_exporter.demowriter import (
    DAY,
    HOUR,
    MINUTE,
    Batch,
    Progressing,
    Row,
    Stamp,
    aware,
    epoch,
    naive,
    opt,
    replace_sqlite,
    reporting,
    tables_with_rows,
    with_driver,
    write_atomically,
    write_sqlalchemy,
    write_sqlite,
)
from pipeline_exporter.demowriter import schema_statements as pack_schema_statements
from pipeline_exporter.errors import DemoTargetNotEmpty
from pipeline_exporter.packs.method333.outreach import (
    bounce_by_day,
    conversation_rows,
    opt_out_rows,
    outreach_row,
    outreaches,
    sale_rows,
)
from pipeline_exporter.packs.method333.reports import coverage_summary, junit_report
from pipeline_exporter.packs.method333.sites import (
    CHUNK_SITES,
    CITIES,
    HISTORY_DAYS,
    TRADES,
    domain,
    history_rows,
    llm_rows,
    plan_sites,
    site_rows,
)
from pipeline_exporter.redact import mask_url

# Column order of every generated row; tables listed parents first (foreign keys).
COLUMNS: dict[str, tuple[str, ...]] = {
    "keywords": ("id", "keyword", "location", "created_at"),
    "sites": ("id", "keyword_id", "domain", "status", "error_type", "error_message", "score",
              "status_changed_at", "created_at", "updated_at"),
    "site_status_history": ("id", "site_id", "from_status", "to_status", "changed_at"),
    "outreaches": ("id", "site_id", "channel", "contact", "status", "created_at", "sent_at",
                   "delivered_at", "replied_at"),
    "sales": ("id", "site_id", "outreach_id", "channel", "amount_usd", "sold_at"),
    "conversations": ("id", "site_id", "outreach_id", "channel", "direction", "sentiment",
                      "is_read", "sender", "body", "created_at"),
    "opt_outs": ("id", "channel", "contact", "created_at"),
    "llm_usage": ("id", "site_id", "stage", "provider", "model", "prompt_tokens",
                  "completion_tokens", "cost_usd", "created_at"),
    "cron_jobs": ("name", "description", "interval_seconds", "enabled"),
    "cron_job_logs": ("id", "job_name", "started_at", "finished_at", "status", "duration_ms",
                      "error_message"),
    "http_errors": ("id", "source", "stage", "status_code", "url", "created_at"),
}
TABLES = tuple(COLUMNS)
PACK = "method333"
# Append-only tables and the timestamp their rows are written at: a pipeline appends in time order,
# so the demo numbers these rows by that time (its generator makes them site by site).
CHRONOLOGICAL = {"site_status_history": "changed_at", "sales": "sold_at", "conversations": "created_at",
                 "opt_outs": "created_at", "llm_usage": "created_at", "cron_job_logs": "started_at",
                 "http_errors": "created_at"}

# (name, description, interval_seconds, typical run seconds, enabled)
CRON_JOBS = (
    ("scrapeSites", "Fetch newly found prospect sites through the proxy pool", 300, 150, 1),
    ("scoreSites", "Score scraped sites with the LLM", 300, 45, 1),
    ("rescoreSites", "Re-score promising sites with the stronger model", 900, 120, 1),
    ("generateProposals", "Write proposals for rescored sites", 600, 90, 1),
    ("sendOutreach", "Send queued outreach by email, SMS, forms and social", 120, 20, 1),
    ("pollReplies", "Poll the inboxes and Twilio for replies", 60, 4, 1),
    ("classifySentiment", "Classify the sentiment of new inbound messages", 300, 12, 1),
    ("processOptOuts", "Apply unsubscribe links and STOP replies", 600, 2, 1),
    ("checkDeliverability", "Check bounce and complaint rates with Resend", 3600, 8, 1),
    ("precomputeDashboard", "Precompute the dashboard aggregates", 900, 40, 1),
    ("backupDatabase", "Back up db/sites.db to object storage", 86400, 420, 1),
    ("syncKeywords", "Import new search keywords from the planning sheet", 43200, 30, 0),
)
RUNNING_JOB, FAILED_JOB, STALE_JOB = "scrapeSites", "backupDatabase", "checkDeliverability"
CRON_LOG_DAYS = 7
_CRON_ERRORS = (
    "SQLITE_BUSY: database is locked",
    "Request to https://openrouter.ai/api/v1/chat/completions failed with status 429",
    "ETIMEDOUT connecting to smtp.resend.com:465",
    "TypeError: Cannot read properties of undefined (reading 'score')",
)
_BACKUP_ERROR = "ENOSPC: no space left on device, write '/var/backups/333method/sites-{day}.db'"

# (source, status code, stages, weight) of the background HTTP errors.
_HTTP_MIX = (
    ("scraper", 403, ("scraping",), .27), ("scraper", 429, ("scraping",), .09),
    ("scraper", 503, ("scraping",), .05), ("scraper", 500, ("scraping",), .04),
    ("zenrows", 429, ("scraping",), .07), ("zenrows", 503, ("scraping",), .05),
    ("zenrows", 500, ("scraping",), .03),
    ("openrouter", 429, ("scoring", "rescoring", "proposals", "replies"), .12),
    ("openrouter", 503, ("scoring", "rescoring", "proposals"), .06),
    ("openrouter", 500, ("scoring", "proposals"), .03),
    ("resend", 429, ("outreach",), .06), ("resend", 500, ("outreach",), .03),
    ("twilio", 429, ("outreach", "replies"), .03), ("twilio", 500, ("outreach",), .015),
    ("twilio", 503, ("outreach", "replies"), .015),
)
_HTTP_MIX_CUM = list(accumulate(w for *_, w in _HTTP_MIX))
_TWILIO_ACCOUNT = "AC5ef8732a3c49700934481addd5ce1659"  # made up
HTTP_BACKGROUND_DAYS = 30
# (source, code, stages, count, window seconds): bursts that make the HTTP alerts fire.
HTTP_BURSTS = (("scraper", 403, ("scraping",), 40, 55 * MINUTE),
               ("openrouter", 429, ("scoring", "proposals"), 24, 13 * MINUTE))


# ---------------------------------------------------------------- public API


def build_demo(path: Path, *, sites: int = 20_000, seed: int = 333, now: datetime | None = None,
               files_dir: Path | None = None, force: bool = False, progress: Progressing | None = None
               ) -> dict[str, int]:
    """Write a demo SQLite database at path; return row counts per table.

    An existing file there (perhaps the real pipeline database) is replaced only with ``force``;
    without it DemoTargetNotEmpty is raised and nothing is touched.
    """
    path = Path(path)
    if not force and (path.exists() or path.is_symlink()):
        raise DemoTargetNotEmpty(f"{path} already exists; refusing to replace it with demo data "
                                 "(pass --force, or force=True, to overwrite it)")
    moment = epoch(now)
    counts = replace_sqlite(path, lambda tmp: write_sqlite(tmp, PACK, COLUMNS, CHRONOLOGICAL, reporting(
        iter_demo_rows(sites=sites, seed=seed, now=moment, stamp=text_stamper()), progress)))
    if files_dir is not None:
        write_demo_files(Path(files_dir), seed=seed, now=aware(moment))
    return counts


def build_demo_url(database_url: str, *, sites: int = 20_000, seed: int = 333,
                   now: datetime | None = None, force: bool = False, progress: Progressing | None = None
                   ) -> dict[str, int]:
    """Fill a PostgreSQL or MySQL/MariaDB database (tables created from the shipped DDL) with the same rows.

    If any pipeline table already holds rows, they are deleted first only with ``force``;
    without it DemoTargetNotEmpty is raised and nothing is changed.
    """
    url = with_driver(make_url(database_url))
    backend = url.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise ValueError(f"build_demo_url supports PostgreSQL and MySQL/MariaDB, not {backend!r}; "
                         "use build_demo for SQLite")
    ddl = schema_statements("postgresql" if backend == "postgresql" else "mysql")
    # PostgreSQL takes aware datetimes; MySQL DATETIME holds naive UTC.
    stamp: Stamp = aware if backend == "postgresql" else naive
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            if not force and (filled := tables_with_rows(conn, TABLES)):
                raise DemoTargetNotEmpty(
                    f"{mask_url(database_url)} already has rows in {', '.join(filled)}; refusing to delete "
                    "them for demo data (pass --force, or force=True, to overwrite them)")
            rows = reporting(iter_demo_rows(sites=sites, seed=seed, now=epoch(now), stamp=stamp), progress)
            return write_sqlalchemy(conn, ddl, COLUMNS, CHRONOLOGICAL, rows)
    finally:
        engine.dispose()


def write_demo_files(files_dir: Path, *, seed: int = 333, now: datetime | None = None) -> None:
    """Write files_dir/coverage/coverage-summary.json (Istanbul json-summary) and
    files_dir/test-results/e2e-junit.xml."""
    moment = epoch(now)
    rng = random.Random(f"{seed}:files")
    coverage = Path(files_dir) / "coverage" / "coverage-summary.json"
    junit = Path(files_dir) / "test-results" / "e2e-junit.xml"
    write_atomically(coverage, json.dumps(coverage_summary(rng), indent=2).encode(), moment - 2 * HOUR)
    write_atomically(junit, junit_report(rng, moment), moment - 25 * MINUTE)


def iter_demo_rows(*, sites: int, seed: int, now: int, stamp: Stamp) -> Iterator[Batch]:
    """Every demo row as (table, batch of rows), parents before children."""
    yield "keywords", list(_keyword_rows(sites, seed, now, stamp))
    yield "cron_jobs", [(name, description, interval, enabled) for name, description, interval, _, enabled in CRON_JOBS]
    yield "cron_job_logs", list(_cron_log_rows(seed, now, stamp))
    yield from _site_batches(sites, seed, now, stamp)
    rows = _http_error_rows(sites, seed, now, stamp)
    while batch := list(islice(rows, 50_000)):
        yield "http_errors", batch


def schema_statements(dialect: str) -> list[str]:
    """The pipeline's shipped DDL of one dialect (sqlite, postgresql, mysql) split into statements."""
    return pack_schema_statements(PACK, dialect)


def text_stamper() -> Stamp:
    """SQLite text timestamps: datetime('now') form, about 2 % as ISO-8601 with T and Z."""
    heads: dict[int, tuple[str, str]] = {}
    plain = [f":{s:02d}" for s in range(60)]
    zulu = [f":{s:02d}Z" for s in range(60)]

    def stamp(t: int) -> str:
        minute, second = divmod(t, 60)
        head = heads.get(minute)
        if head is None:
            text = time.strftime("%Y-%m-%d %H:%M", time.gmtime(minute * 60))
            head = heads[minute] = (text, text.replace(" ", "T"))
        # The pipeline writes some timestamps in ISO form; t % 97 spreads them evenly.
        if t % 97 < 2:
            return head[1] + zulu[second]
        return head[0] + plain[second]

    return stamp


# ---------------------------------------------------------------- keywords, cron, http errors


def _keyword_rows(sites: int, seed: int, now: int, stamp: Stamp) -> Iterator[Row]:
    """About one keyword per 50 sites (at least 20), created before the oldest site."""
    rng = random.Random(f"{seed}:keywords")
    total = max(20, sites // 50)
    combos = len(TRADES) * len(CITIES)
    start = now - (HISTORY_DAYS + 15) * DAY
    for i in range(total):
        trade = TRADES[i % len(TRADES)][1]
        city = CITIES[(i // len(TRADES)) % len(CITIES)]
        if i < combos:
            keyword = f"{trade} {city.replace(',', '').lower()}"
        else:
            keyword = f"{trade} near {10001 + i - combos:05d}"
        location = None if rng.random() < 0.15 else city
        yield i + 1, keyword, location, stamp(start + i * 15 * DAY // total)


def _cron_log_rows(seed: int, now: int, stamp: Stamp) -> Iterator[Row]:
    """A week of runs per job at its interval, with the failed, stale and running plantings."""
    rng = random.Random(f"{seed}:cron")
    ids = count(1)
    for name, _, interval, typical, enabled in CRON_JOBS:
        starts = _cron_starts(name, interval, enabled, rng, now)
        for i, start in enumerate(starts):
            last = i == len(starts) - 1
            status, seconds, error = _cron_outcome(name, typical, interval, start, last, rng, now)
            finished = None if seconds is None else start + math.ceil(seconds)
            duration = None if seconds is None else int(seconds * 1000)
            yield (next(ids), name, stamp(start), opt(stamp, finished), status, duration, error)


def _cron_starts(name: str, interval: int, enabled: int, rng: random.Random, now: int) -> list[int]:
    """Start times of a job's runs over the log window, oldest first."""
    if name == RUNNING_JOB:
        last = now - 95
    elif name == STALE_JOB:
        last = now - int(2.6 * interval) - int(rng.random() * 600)
    elif not enabled:
        last = now - 5 * DAY - int(rng.random() * HOUR)
    else:
        last = now - int(interval * (0.2 + 0.7 * rng.random()))
    starts = []
    t = last
    while t >= now - CRON_LOG_DAYS * DAY:
        starts.append(t)
        t -= interval + int(rng.random() * 3)
    return starts[::-1]


def _cron_outcome(
    name: str, typical: int, interval: int, start: int, last: bool, rng: random.Random, now: int
) -> tuple[str, float | None, str | None]:
    """Status, duration in seconds and error of one run (the latest run follows the plantings)."""
    if last and name == RUNNING_JOB:
        return "running", None, None
    seconds = min(typical * rng.lognormvariate(0, 0.45), interval * 0.8, now - start - 1)
    seconds = max(round(seconds, 3), 0.05)
    if last and name == FAILED_JOB:
        day = time.strftime("%Y%m%d", time.gmtime(start))
        return "failed", seconds, _BACKUP_ERROR.format(day=day)
    # Random failures, but never on the latest run: only FAILED_JOB must alert.
    if not last and rng.random() < 0.02:
        return "failed", min(seconds, 3.0), _CRON_ERRORS[int(rng.random() * len(_CRON_ERRORS))]
    return "success", seconds, None


def _http_error_rows(sites: int, seed: int, now: int, stamp: Stamp) -> Iterator[Row]:
    """About one HTTP error per two sites over 30 days, then the 403 and 429 bursts."""
    rng = random.Random(f"{seed}:http")
    rand = rng.random
    bursts = sum(b[3] for b in HTTP_BURSTS)
    background = max(0, sites // 2 - bursts)
    span = HTTP_BACKGROUND_DAYS * DAY
    start = now - span
    ids = count(1)
    mix = rng.choices(_HTTP_MIX, cum_weights=_HTTP_MIX_CUM, k=background)
    for i, (source, code, stages, _) in enumerate(mix):
        # Stratified times keep the rows in time order, like the pipeline's inserts.
        t = start + int((i + rand()) * span / background)
        stage = stages[int(rand() * len(stages))]
        yield next(ids), source, stage, code, _http_url(source, rand, sites), stamp(t)
    for source, code, stages, n, window in HTTP_BURSTS:
        for t in sorted(now - int(rand() * window) for _ in range(n)):
            stage = stages[int(rand() * len(stages))]
            yield next(ids), source, stage, code, _http_url(source, rand, sites), stamp(t)


def _http_url(source: str, rand: Callable[[], float], sites: int) -> str:
    """The URL a failing request went to."""
    site = domain(1 + int(rand() * max(sites, 1)))
    if source == "scraper":
        return f"https://{site}/{('', 'contact', 'about-us', 'services')[int(rand() * 4)]}"
    if source == "zenrows":
        return f"https://api.zenrows.com/v1/?url=https%3A%2F%2F{site}%2F&js_render=true"
    if source == "openrouter":
        return "https://openrouter.ai/api/v1/chat/completions"
    if source == "resend":
        return "https://api.resend.com/emails"
    return f"https://api.twilio.com/2010-04-01/Accounts/{_TWILIO_ACCOUNT}/Messages.json"


# ---------------------------------------------------------------- sites and their children


def _site_batches(sites: int, seed: int, now: int, stamp: Stamp) -> Iterator[Batch]:
    """Sites in chunks, each chunk followed by the rows of its children."""
    rng = random.Random(f"{seed}:sites")
    keywords = max(20, sites // 50)
    bounce = bounce_by_day(rng)
    ids = {t: count(1) for t in TABLES}
    for first in range(1, sites + 1, CHUNK_SITES):
        plans = plan_sites(rng, first, min(CHUNK_SITES, sites - first + 1), now)
        yield "sites", site_rows(plans, rng, keywords, now, stamp)
        yield "site_status_history", history_rows(plans, ids["site_status_history"], stamp)
        sends = [outreaches(p, rng, ids["outreaches"], bounce, now) for p in plans]
        yield "outreaches", [outreach_row(o, stamp) for group in sends for o in group]
        yield "sales", sale_rows(plans, sends, rng, ids["sales"], stamp)
        yield "conversations", conversation_rows(plans, sends, rng, ids["conversations"], now, stamp)
        yield "opt_outs", opt_out_rows(plans, sends, ids["opt_outs"], stamp)
        yield "llm_usage", llm_rows(plans, rng, ids["llm_usage"], stamp)
