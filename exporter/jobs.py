"""Build the scheduler's jobs from the config: one per pack query, plus the built-in sources."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import psutil

from exporter.config import Config, LabelSpec, MetricSpec, QuerySpec, check_result_columns
from exporter.db import Database
from exporter.errors import QueryError
from exporter.incremental import Incremental
from exporter.scheduler import Job
from exporter.shaping import CapMemory, Capper, MetricData, Shaper, label_value
from exporter.snapshot import JobInfo
from exporter.sources.reports import parse_coverage, parse_junit, read_bounded


def gauge(name: str, help_text: str, labels: tuple[str, ...] = (),
          series: dict[tuple[str, ...], float] | None = None) -> MetricData:
    """Metric data of a gauge from Python values."""
    return MetricData(name, "gauge", help_text, labels, dict(series or {}))


def query_job(query: QuerySpec, db: Database, parameters: dict[str, Any], dropped: CapMemory) -> Job:
    """A job running one pack query through its shaper."""
    shaper = Shaper(query, dropped)
    statements = shaper.statements(db.dialect)
    incremental = Incremental(query, shaper) if query.incremental else None

    def run(now: float) -> list[MetricData]:
        if incremental is not None:
            # A failed run leaves the totals and the last key untouched: the next run repeats the delta.
            full = incremental.due_full(now)
            results = db.fetch(statements, {**parameters, "now": now, **incremental.parameters(now)}, query.timeout)
            check_result_columns(query, results[0].columns)
            return incremental.update(results[0], full, now)
        results = db.fetch(statements, {**parameters, "now": now}, query.timeout)
        if not query.is_histogram:
            check_result_columns(query, results[0].columns)
        return shaper.shape(results)

    return Job(JobInfo(query.name, "query", query.interval, query.stale_after), run)


def probe_columns(query: QuerySpec, db: Database, parameters: dict[str, Any]) -> None:
    """Check at start that a query returns every column its metrics read (LIMIT 0: no rows are read)."""
    base = query.sql_for(db.dialect).strip().rstrip(";")
    extra = {"last_key": query.incremental.start} if query.incremental else {}
    result = db.fetch([f"SELECT * FROM ({base}) pe_probe LIMIT 0"], {**parameters, "now": 0.0, **extra},
                      query.timeout)
    check_result_columns(query, result[0].columns)


def coverage_job(path: Path, interval: float, max_bytes: int) -> Job:
    """Coverage ratios and the report's modification time."""

    def run(_now: float) -> list[MetricData]:
        data, mtime = read_bounded(path, max_bytes)
        ratios = parse_coverage(data, path)
        return [gauge("pipeline_code_coverage_ratio", "Code coverage of the pipeline's test suite, 0 to 1, by kind.",
                      ("metric",), {(kind,): ratio for kind, ratio in ratios.items()}),
                gauge("pipeline_code_coverage_report_timestamp_seconds",
                      "Modification time of the coverage summary file, in Unix seconds.", (), {(): mtime})]

    return Job(JobInfo("coverage_report", "file", interval, interval * 3), run)


E2E_TESTS = MetricSpec("pipeline_e2e_tests", "gauge", "Test cases in the latest end-to-end report, by suite and result.",
                       (LabelSpec("suite", "suite", "unnamed"), LabelSpec("result", "result", cap=0)), value="n")
E2E_DURATION = MetricSpec("pipeline_e2e_duration_seconds", "gauge",
                          "Time the suite took in the latest end-to-end report.",
                          (LabelSpec("suite", "suite", "unnamed"),), value="seconds")


def e2e_job(path: Path, interval: float, max_bytes: int, memory: CapMemory) -> Job:
    """End-to-end test counts per suite from the latest JUnit report; suite names are a capped label."""
    capper = Capper(memory)
    for spec in (E2E_TESTS, E2E_DURATION):
        memory.register(spec.name)

    def run(_now: float) -> list[MetricData]:
        data, mtime = read_bounded(path, max_bytes)
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

    return Job(JobInfo("e2e_report", "file", interval, interval * 3), run)


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


def build_jobs(config: Config, db: Database, dropped: CapMemory) -> list[Job]:
    """Every job the exporter runs for this config."""
    jobs = [query_job(query, db, dict(config.parameters), dropped) for query in config.queries]
    jobs.append(coverage_job(config.files.coverage, config.files.interval, config.files.max_bytes))
    jobs.append(e2e_job(config.files.e2e_report, config.files.interval, config.files.max_bytes, dropped))
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
