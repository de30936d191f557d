"""The database's own health: its size on disk and SQLite's integrity check."""

from __future__ import annotations

from pipeline_exporter.db import Database
from pipeline_exporter.model import Job, JobInfo, MetricData


def database_size_job(db: Database, interval: float) -> Job:
    """The database's size on disk."""

    def run(_now: float) -> list[MetricData]:
        return [MetricData.gauge("pipeline_database_size_bytes",
                                 "Size of the pipeline database (SQLite: file plus WAL; servers: their own figure).",
                                 (), {(): db.size_bytes()})]

    return Job(JobInfo("database_size", "database", interval, interval * 3), run)


def integrity_job(db: Database, interval: float, timeout: float) -> Job:
    """SQLite's quick_check, on a slow schedule."""

    def run(_now: float) -> list[MetricData]:
        ok = db.integrity_ok(timeout)
        return [MetricData.gauge("pipeline_database_integrity_ok",
                                 "1 if the last SQLite quick_check of the pipeline database passed, else 0.",
                                 (), {(): 1.0 if ok else 0.0})]

    # Stale only after three missed checks: an hourly check stays visible between runs.
    return Job(JobInfo("database_integrity", "database", interval, interval * 3), run)
