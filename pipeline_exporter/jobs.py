"""The scheduler's jobs for a config: one per pack query, plus the built-in sources.

A query's run reads top to bottom in the ``_*_run`` functions: render the SQL (``sql``), fetch the
rows (``db``), check the columns (``columns``), shape them into metric data (``shaping``), fold
them into totals or windows (``incremental``, ``windows``), cap, and hand the result to the
scheduler, which publishes it in the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline_exporter.columns import check_columns
from pipeline_exporter.config import Config, QuerySpec
from pipeline_exporter.db import Database
from pipeline_exporter.errors import ConfigError
from pipeline_exporter.incremental import Incremental
from pipeline_exporter.journal import Journaled
from pipeline_exporter.memory import Memory
from pipeline_exporter.model import Job, JobInfo, MetricData, Result, Runner
from pipeline_exporter.plans import ScanChoice
from pipeline_exporter.shaping import Shaper, scaled
from pipeline_exporter.sources.budget import budget_job
from pipeline_exporter.sources.database import database_size_job, integrity_job
from pipeline_exporter.sources.host import existing_folder, host_job
from pipeline_exporter.sources.reports import coverage_job, e2e_job
from pipeline_exporter.sql import (
    BOUND_COLUMN,
    has_last_keys,
    last_keys_sql,
    probe_sql,
    render,
    split_bounds,
    statements,
)
from pipeline_exporter.windows import BucketedWindows, Windowed

JobRun = Callable[[float], list[MetricData]]


def query_job(query: QuerySpec, db: Database, parameters: dict[str, Any], memory: Memory) -> Job:
    """A job running one pack query: plain, incremental (counters) or windowed (recent gauges)."""
    if query.incremental is not None:
        run = _counting_run(query, db, parameters, memory)
    elif query.windows is not None:
        run = _windowed_run(query, db, parameters, memory)
    else:
        run = _plain_run(query, db, parameters, memory)
    return Job(JobInfo(query.name, "query", query.interval, query.stale_after), run)


def _plain_run(query: QuerySpec, db: Database, parameters: dict[str, Any], memory: Memory) -> JobRun:
    shaper = Shaper(query, memory.caps)
    if query.journal is not None:  # its exact path is the statement as written ($scan kept)
        return _journaled_run(query, db, parameters, memory, shaper, statements(query, db.dialect))
    plans = ScanChoice(query, db.dialect, lambda scan: statements(query, db.dialect, scan))  # render

    def run(now: float) -> list[MetricData]:
        bind = {**parameters, "now": now}
        results = db.read(lambda execute: [execute(sql, bind)                    # fetch ($scan or the
                                           for sql in plans.statements(execute, bind)], query.timeout)  # planner)
        if not query.is_histogram:
            check_columns(query, results[0].columns)                            # check
        return shaper.shape(results)                                            # shape, cap

    return run


def _journaled_run(query: QuerySpec, db: Database, parameters: dict[str, Any], memory: Memory, shaper: Shaper,
                   sql: list[str]) -> JobRun:
    assert query.journal is not None
    if query.journal.stuck_after not in parameters:
        raise ConfigError(query.origin, f"queries.{query.name}.journal.stuck_after",
                          f"{query.journal.stuck_after!r} is no parameter of the pack")

    def exact(execute: Runner, now: float) -> list[MetricData]:
        result = execute(sql[0], {**parameters, "now": now})                     # the exact path: the statement
        check_columns(query, result.columns)
        return shaper.shape_uncapped([result])

    journaled = memory.journals[query.name] = Journaled(query, db.dialect, exact)  # the fast path

    def run(now: float) -> list[MetricData]:
        data = db.read(lambda execute: journaled.compute(execute, parameters, now), query.timeout)
        return [shaper.cap(metric, scaled(metric, datum)) for metric, datum in zip(query.metrics, data)]

    return run


def _counting_run(query: QuerySpec, db: Database, parameters: dict[str, Any], memory: Memory) -> JobRun:
    shaper = Shaper(query, memory.caps)
    counting = Incremental(query, memory.counter_state(query))
    plans = ScanChoice(query, db.dialect, lambda scan: [render(query, db.dialect, scan)])  # render

    def run(now: float) -> list[MetricData]:
        # A failed run leaves the state untouched: the next run counts the same events again.
        plan = counting.plan(now)
        bind = {**parameters, "now": now}

        def read(execute: Runner) -> dict[str, Result]:
            low = plan.pending if plan.pending is not None else counting.spec.start
            sql = plans.statements(execute, {**bind, "last_key": low})[0]        # $scan or the planner
            return counting.read(lambda keys: count_above(execute, sql, bind, keys), plan)

        results = db.read(read, query.timeout)                                   # fetch
        for result in results.values():
            check_columns(query, result.columns)                                # check
        shaped = {name: shaper.shape_uncapped([result]) for name, result in results.items()}  # shape
        totals = counting.fold(shaped, results, plan, now)                      # fold
        memory.nonfinite.record(query, results)                                 # values left out
        return [memory.guard.apply(shaper.cap(metric, data))                    # cap, never down
                for metric, data in zip(query.metrics, totals)]

    return run


def count_above(execute: Runner, sql: str, bind: dict[str, Any], keys: list[Any]) -> list[Result]:
    """The counts above each :last_key of ``keys``: one statement each, or one statement for all
    where the SQL reads ``$last_keys`` (one scan of the table however many bounds a run checks)."""
    if not has_last_keys(sql):
        return [execute(sql, {**bind, "last_key": key}) for key in keys]
    bounds = {f"pe_last_key_{i}": key for i, key in enumerate(keys)}
    return split_bounds(execute(last_keys_sql(sql, len(keys)), {**bind, **bounds}), len(keys))


def _windowed_run(query: QuerySpec, db: Database, parameters: dict[str, Any], memory: Memory) -> JobRun:
    shaper = Shaper(query, memory.caps)
    assert query.windows is not None
    if query.windows.key is not None:
        return _bucketed_run(query, db, parameters, memory, shaper)
    windowed = Windowed(query, db.dialect)                                      # render

    def run(now: float) -> list[MetricData]:
        def fetch(execute: Runner) -> Result:
            return windowed.fetch(execute, parameters, now)

        # The statement wraps the pack's SQL and names every column it reads: a missing column is the
        # database's error, and probe_columns checks the pack's own columns at start.
        result = db.read(fetch, query.timeout)                                  # fetch (key search first)
        shaped = windowed.shape(result)                                         # shape, fold the windows
        return [shaper.cap(metric, data) for metric, data in zip(query.metrics, shaped)]  # cap

    return run


def _bucketed_run(query: QuerySpec, db: Database, parameters: dict[str, Any], memory: Memory,
                  shaper: Shaper) -> JobRun:
    windows = BucketedWindows(query, db.dialect, memory.bucket_state(query))   # render

    def run(now: float) -> list[MetricData]:
        # fetch the last minutes' events and each window's partial first minute, fold into the buckets
        data = db.read(lambda execute: windows.compute(execute, parameters, now), query.timeout)
        return [shaper.cap(metric, datum) for metric, datum in zip(query.metrics, data)]  # cap

    return run


def probe_columns(query: QuerySpec, db: Database, parameters: dict[str, Any]) -> None:
    """Check at start that a query returns every column its metrics read (LIMIT 0: no rows are read)."""
    extra: dict[str, Any] = {"last_key": query.incremental.start, "pe_last_key_0": query.incremental.start} \
        if query.incremental else {}
    if query.windows:
        extra = {**Windowed(query, db.dialect).parameters(0.0), "window_key": 0, "window_key_end": 0}
    result = db.fetch([probe_sql(query, db.dialect)], {**parameters, "now": 0.0, **extra}, query.timeout)
    check_columns(query, result[0].columns)
    if query.incremental and has_last_keys(render(query, db.dialect)) and BOUND_COLUMN not in result[0].columns:
        raise ConfigError(query.origin, f"queries.{query.name}.sql", f"a query reading $last_keys returns the "
                          f"column {BOUND_COLUMN} and groups by it (it returns: {', '.join(result[0].columns)})")


def build_jobs(config: Config, db: Database, memory: Memory) -> list[Job]:
    """Every job the exporter runs for this config."""
    jobs = [query_job(query, db, dict(config.parameters), memory) for query in config.queries]
    enabled = config.collectors  # a source switched off is not run at all: no series, no error
    if enabled.coverage:
        jobs.append(coverage_job(config.files))
    if enabled.e2e:
        jobs.append(e2e_job(config.files, memory.caps))
    if config.llm_budget_usd:
        jobs.append(budget_job(config.llm_budget_usd))
    if enabled.database_size:
        jobs.append(database_size_job(db, config.checks.size_interval))
    if enabled.database_integrity and db.dialect == "sqlite":
        jobs.append(integrity_job(db, config.checks.integrity_interval, config.checks.integrity_timeout))
    if enabled.host:
        disk = db.sqlite_path.resolve().parent if db.sqlite_path else Path("/")
        jobs.append(host_job(existing_folder(disk), config.checks.host_interval))
    return jobs
