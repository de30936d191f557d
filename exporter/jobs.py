"""Build the scheduler's jobs from the config: one per pack query, plus the built-in sources."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import psutil

from exporter.config import Config, FilesConfig, LabelSpec, MetricSpec, QuerySpec, check_result_columns, sql_body
from exporter.db import Database
from exporter.errors import ConfigError, QueryError
from exporter.incremental import Incremental
from exporter.memory import Memory
from exporter.scheduler import Job
from exporter.shaping import CapMemory, Capper, MetricData, Shaper, label_value
from exporter.snapshot import JobInfo
from exporter.sources.reports import parse_coverage, parse_junit, read_bounded
from exporter.windows import Windowed


def gauge(name: str, help_text: str, labels: tuple[str, ...] = (),
          series: dict[tuple[str, ...], float] | None = None) -> MetricData:
    """Metric data of a gauge from Python values."""
    return MetricData(name, "gauge", help_text, labels, dict(series or {}))


def query_job(query: QuerySpec, db: Database, parameters: dict[str, Any], memory: Memory) -> Job:
    """A job running one pack query: plain, incremental (counters) or windowed (recent gauges)."""
    shaper = Shaper(query, memory.caps)
    guard = memory.guard

    if query.incremental is not None:
        incremental = Incremental(query, shaper, memory.counter_state(query))
        sql = shaper.statements(db.dialect)[0]

        def run(now: float) -> list[MetricData]:
            # A failed run leaves the state untouched: the next run counts the same events again.
            plan = incremental.plan(now)
            binds = [{**parameters, "now": now, **bind} for bind in incremental.bind(plan)]
            results = db.read(lambda execute: [execute(sql, bind) for bind in binds], query.timeout)
            check_result_columns(query, results[0].columns)
            return [guard.apply(data) for data in incremental.update(results, plan, now)]

    elif query.windows is not None:
        windowed = Windowed(query, db.dialect)

        def run(now: float) -> list[MetricData]:
            data = db.read(lambda execute: windowed.run(execute, parameters, now), query.timeout)
            return [shaper.cap(metric, datum) for metric, datum in zip(query.metrics, data)]

    else:
        statements = shaper.statements(db.dialect)

        def run(now: float) -> list[MetricData]:
            results = db.fetch(statements, {**parameters, "now": now}, query.timeout)
            if not query.is_histogram:
                check_result_columns(query, results[0].columns)
            return shaper.shape(results)

    return Job(JobInfo(query.name, "query", query.interval, query.stale_after), run)


def probe_columns(query: QuerySpec, db: Database, parameters: dict[str, Any]) -> None:
    """Check at start that a query returns every column its metrics read (LIMIT 0: no rows are read)."""
    base = sql_body(query.sql_for(db.dialect))
    extra: dict[str, Any] = {"last_key": query.incremental.start} if query.incremental else {}
    if query.windows:
        extra = {**Windowed(query, db.dialect).parameters(0.0), "window_key": 0}
    result = db.fetch([f"SELECT * FROM ({base}\n) pe_probe LIMIT 0"], {**parameters, "now": 0.0, **extra},
                      query.timeout)
    columns = result[0].columns
    if query.windows and query.windows.time not in columns:
        raise ConfigError(query.source, f"queries.{query.name}.windows.time",
                          f"the query does not return the time column {query.windows.time!r} "
                          f"(it returns: {', '.join(columns)})")
    check_result_columns(query, columns)


def report_job(name: str, path: Path, explicit: bool, interval: float, max_bytes: int,
               parse: Callable[[bytes, float], list[MetricData]]) -> Job:
    """A report file beside the database: a default path that does not exist means the source is
    not in use (no data, no error); a path the user set must exist."""

    def run(_now: float) -> list[MetricData]:
        if not explicit and not os.path.lexists(path):
            return []
        data, mtime = read_bounded(path, max_bytes)
        try:
            return parse(data, mtime)
        except RecursionError:
            raise QueryError("source", f"{path} nests too deeply to be read") from None

    return Job(JobInfo(name, "file", interval, interval * 3), run)


def coverage_job(files: FilesConfig) -> Job:
    """Coverage ratios and the report's modification time."""
    path = files.coverage

    def parse(data: bytes, mtime: float) -> list[MetricData]:
        ratios = parse_coverage(data, path)
        return [gauge("pipeline_code_coverage_ratio", "Code coverage of the pipeline's test suite, 0 to 1, by kind.",
                      ("metric",), {(kind,): ratio for kind, ratio in ratios.items()}),
                gauge("pipeline_code_coverage_report_timestamp_seconds",
                      "Modification time of the coverage summary file, in Unix seconds.", (), {(): mtime})]

    return report_job("coverage_report", path, files.coverage_explicit, files.interval, files.max_bytes, parse)


E2E_TESTS = MetricSpec("pipeline_e2e_tests", "gauge", "Test cases in the latest end-to-end report, by suite and result.",
                       (LabelSpec("suite", "suite", "unnamed"), LabelSpec("result", "result", cap=0)), value="n")
E2E_DURATION = MetricSpec("pipeline_e2e_duration_seconds", "gauge",
                          "Time the suite took in the latest end-to-end report.",
                          (LabelSpec("suite", "suite", "unnamed"),), value="seconds")


def e2e_job(files: FilesConfig, memory: CapMemory) -> Job:
    """End-to-end test counts per suite from the latest JUnit report; suite names are a capped label."""
    capper = Capper(memory)
    path = files.e2e_report
    for spec in (E2E_TESTS, E2E_DURATION):
        memory.register(spec.name)

    def parse(data: bytes, mtime: float) -> list[MetricData]:
        suites = {label_value(name, "unnamed"): counts for name, counts in parse_junit(data, path).items()}
        tests = {}
        for suite, counts in suites.items():
            tests.update({(suite, "passed"): counts.passed, (suite, "failed"): counts.failed,
                          (suite, "skipped"): counts.skipped})
        durations = {(suite,): counts.seconds for suite, counts in suites.items()}
        return [capper.cap(E2E_TESTS, gauge(E2E_TESTS.name, E2E_TESTS.help, E2E_TESTS.label_names, tests)),
                capper.cap(E2E_DURATION, gauge(E2E_DURATION.name, E2E_DURATION.help, ("suite",), durations)),
                gauge("pipeline_e2e_report_timestamp_seconds",
                      "Modification time of the end-to-end JUnit report, in Unix seconds.", (), {(): mtime})]

    return report_job("e2e_report", path, files.e2e_report_explicit, files.interval, files.max_bytes, parse)


def budget_job(budget: Mapping[str, float]) -> Job:
    """The monthly LLM budget from the config, beside the month-to-date cost the pack computes."""
    data = [gauge("pipeline_llm_budget_usd",
                  "Monthly LLM budget in US dollars from the exporter's config, by provider (total: all together).",
                  ("provider",), {(provider,): float(usd) for provider, usd in budget.items()})]
    return Job(JobInfo("llm_budget", "config", 300.0, 900.0), lambda _now: data)


def database_size_job(db: Database, interval: float) -> Job:
    """The database's size on disk."""

    def run(_now: float) -> list[MetricData]:
        return [gauge("pipeline_database_size_bytes",
                      "Size of the pipeline database (SQLite: file plus WAL; servers: their own figure).",
                      (), {(): db.size_bytes()})]

    return Job(JobInfo("database_size", "database", interval, interval * 3), run)


def integrity_job(db: Database, interval: float, timeout: float) -> Job:
    """SQLite's quick_check, on a slow schedule."""

    def run(_now: float) -> list[MetricData]:
        ok = db.integrity_ok(timeout)
        return [gauge("pipeline_database_integrity_ok",
                      "1 if the last SQLite quick_check of the pipeline database passed, else 0.",
                      (), {(): 1.0 if ok else 0.0})]

    # Stale only after three missed checks: an hourly check stays visible between runs.
    return Job(JobInfo("database_integrity", "database", interval, interval * 3), run)


def host_job(disk_path: Path, interval: float, cpu_percent: Callable[[], float] | None = None) -> Job:
    """Host CPU, memory and the disk holding the database, from psutil."""
    cpu = cpu_percent or (lambda: psutil.cpu_percent(interval=None))
    cpu()  # the first reading only starts psutil's measuring window

    def run(_now: float) -> list[MetricData]:
        try:
            memory = psutil.virtual_memory()
            disk = psutil.disk_usage(str(disk_path))
            utilization = cpu() / 100.0
        except OSError as exc:
            raise QueryError("source", f"psutil: {exc.strerror}") from None
        path = (str(disk_path),)
        return [gauge("pipeline_host_cpu_utilization_ratio", "Share of the host's CPU time in use, 0 to 1.",
                      (), {(): utilization}),
                gauge("pipeline_host_memory_used_bytes", "Memory in use on the host.", (), {(): float(memory.used)}),
                gauge("pipeline_host_memory_total_bytes", "Memory installed on the host.", (), {(): float(memory.total)}),
                gauge("pipeline_host_disk_used_bytes", "Space used on the filesystem holding the database.",
                      ("path",), {path: float(disk.used)}),
                gauge("pipeline_host_disk_total_bytes", "Size of the filesystem holding the database.",
                      ("path",), {path: float(disk.total)})]

    return Job(JobInfo("host", "host", interval, interval * 3), run)


def build_jobs(config: Config, db: Database, memory: Memory) -> list[Job]:
    """Every job the exporter runs for this config."""
    jobs = [query_job(query, db, dict(config.parameters), memory) for query in config.queries]
    jobs.append(coverage_job(config.files))
    jobs.append(e2e_job(config.files, memory.caps))
    if config.llm_budget_usd:
        jobs.append(budget_job(config.llm_budget_usd))
    jobs.append(database_size_job(db, config.checks.size_interval))
    if db.dialect == "sqlite":
        jobs.append(integrity_job(db, config.checks.integrity_interval, config.checks.integrity_timeout))
    disk = db.sqlite_path.resolve().parent if db.sqlite_path else Path("/")
    jobs.append(host_job(_existing(disk), config.checks.host_interval))
    return jobs


def _existing(path: Path) -> Path:
    """The nearest existing folder, so the disk gauge works before the database file appears."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
