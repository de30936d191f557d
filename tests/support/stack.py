"""Start the real stack on loopback: the exporter, Prometheus with the shipped rules, Alertmanager."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import requests
import yaml

from tests.support.procs import free_port, require_binary, running, wait_for

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    """A started process and its base URL."""

    url: str
    address: str
    log: Path

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(self.url + path, params=params, timeout=5)


def _logged(what: str, log: Path, check):
    """Wait for a readiness check; on timeout, show the end of the process's log."""
    try:
        return wait_for(check, timeout=30, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}") from None


@contextmanager
def exporter(tmp: Path, db: Path, *, coverage: Path | None = None, e2e_report: Path | None = None,
             config: Path | None = None, extra: list[str] | None = None, ready: bool = True) -> Iterator[Service]:
    """``python -m exporter`` on a free port; waits for /-/ready unless ``ready`` is False."""
    port = free_port()
    args = [sys.executable, "-m", "exporter", "--web.listen-address", f"127.0.0.1:{port}",
            "--database-url", f"sqlite:///{db}",
            "--coverage-file", str(coverage or tmp / "absent-coverage.json"),
            "--e2e-report", str(e2e_report or tmp / "absent-junit.xml")]
    if config:
        args += ["--config.file", str(config)]
    args += extra or []
    log = tmp / f"exporter-{port}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with running(args, log, env=env, cwd=tmp):
        service = Service(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", log)
        path = "/-/ready" if ready else "/-/healthy"
        _logged("the exporter", log, lambda: service.get(path).status_code == 200)
        yield service


def prometheus_config(tmp: Path, exporter_address: str, alertmanager_address: str | None = None,
                      interval: str = "1s") -> Path:
    """The shipped prometheus.yml with loopback targets, absolute rule paths and short intervals."""
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str(REPO / "alerts" / "*.yml")]
    config["scrape_configs"] = [dict(job, static_configs=[{"targets": [exporter_address]}])
                                for job in config["scrape_configs"] if job["job_name"] == "pipeline-exporter"]
    if alertmanager_address:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_address]}]}]}
    else:
        config.pop("alerting", None)
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def _binary(tmp: Path, name: str, args: list[str]) -> Iterator[Service]:
    """Run a Prometheus-style binary on a free loopback port and wait for its /-/ready."""
    binary = require_binary(name)
    port = free_port()
    log = tmp / f"{name}.log"
    with running([binary, *args, f"--web.listen-address=127.0.0.1:{port}"], log, cwd=tmp):
        service = Service(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", log)
        _logged(name, log, lambda: service.get("/-/ready").status_code == 200)
        yield service


@contextmanager
def prometheus(tmp: Path, exporter_address: str, alertmanager_address: str | None = None,
               interval: str = "1s") -> Iterator[Service]:
    """A real Prometheus scraping the exporter with the shipped rule files."""
    config = prometheus_config(tmp, exporter_address, alertmanager_address, interval)
    with _binary(tmp, "prometheus", [f"--config.file={config}", f"--storage.tsdb.path={tmp / 'prometheus-data'}",
                                     "--web.enable-lifecycle"]) as service:
        yield service


def query(prom: Service, expr: str) -> list[dict]:
    """An instant query's result vector (raises on a PromQL error)."""
    body = prom.get("/api/v1/query", query=expr).json()
    if body.get("status") != "success":
        raise AssertionError(f"query failed: {expr}: {body.get('error')}")
    return body["data"]["result"]


def wait_for_scrapes(prom: Service, count: int = 2, timeout: float = 30) -> None:
    """Wait until Prometheus has scraped the exporter ``count`` times successfully."""
    wait_for(lambda: query(prom, 'count_over_time(up{job="pipeline-exporter"}[5m])')
             and float(query(prom, 'sum(count_over_time(up{job="pipeline-exporter"}[5m]))')[0]["value"][1]) >= count
             and float(query(prom, 'min(up{job="pipeline-exporter"})')[0]["value"][1]) == 1,
             timeout=timeout, what=f"{count} successful scrapes of the exporter")


@contextmanager
def alertmanager(tmp: Path, config: Path) -> Iterator[Service]:
    """A single-node Alertmanager (no gossip port) with the given config."""
    with _binary(tmp, "prometheus-alertmanager", [f"--config.file={config}",
                                                  f"--storage.path={tmp / 'alertmanager-data'}",
                                                  "--cluster.listen-address="]) as service:
        yield service
