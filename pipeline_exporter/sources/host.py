"""The host's CPU, memory and the disk holding the database, from psutil."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil

from pipeline_exporter.errors import CollectionError
from pipeline_exporter.model import Job, JobInfo, MetricData


def host_job(disk_path: Path, interval: float, cpu_percent: Callable[[], float] | None = None) -> Job:
    """Host CPU, memory and the disk holding the database."""
    cpu = cpu_percent or (lambda: psutil.cpu_percent(interval=None))
    cpu()  # the first reading only starts psutil's measuring window

    def run(_now: float) -> list[MetricData]:
        try:
            memory = psutil.virtual_memory()
            disk = psutil.disk_usage(str(disk_path))
            utilization = cpu() / 100.0
        except OSError as exc:
            raise CollectionError("source", f"psutil: {exc.strerror}") from None
        path = (str(disk_path),)
        gauge = MetricData.gauge
        return [
            gauge(
                "pipeline_host_cpu_utilization_ratio",
                "Share of the host's CPU time in use, 0 to 1.",
                (),
                {(): utilization},
            ),
            gauge("pipeline_host_memory_used_bytes", "Memory in use on the host.", (), {(): float(memory.used)}),
            gauge("pipeline_host_memory_total_bytes", "Memory installed on the host.", (), {(): float(memory.total)}),
            gauge(
                "pipeline_host_disk_used_bytes",
                "Space used on the filesystem holding the database.",
                ("path",),
                {path: float(disk.used)},
            ),
            gauge(
                "pipeline_host_disk_total_bytes",
                "Size of the filesystem holding the database.",
                ("path",),
                {path: float(disk.total)},
            ),
        ]

    return Job(JobInfo("host", "host", interval, interval * 3), run)


def existing_folder(path: Path) -> Path:
    """The nearest existing folder, so the disk gauge works before the database file appears."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
