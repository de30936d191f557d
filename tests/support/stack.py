"""Start the real stack on loopback: the exporter, Prometheus with the shipped rules, Alertmanager."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import requests
import yaml

from tests.support.exposition import Samples, parse
from tests.support.paths import REPO
from tests.support.procs import free_port, require_binary, running, wait_for

# Keyword arguments of Service.get that configure the request rather than name a query parameter.
REQUEST_OPTIONS = {"auth", "verify", "headers", "timeout", "cert"}


@dataclass
class Service:
    """A started process: its base URL, log file and (for the exporter) Popen handle."""

    url: str
    address: str
    log: Path
    proc: Popen | None = None
    metrics_path: str = "/metrics"

    def get(self, path: str | None = None, **kwargs: Any) -> requests.Response:
        """GET a path; ``auth``, ``verify``, ``headers``, ``timeout``, ``cert`` go to requests, the rest are params."""
        options = {key: kwargs.pop(key) for key in list(kwargs) if key in REQUEST_OPTIONS}
        options.setdefault("timeout", 10)
        return requests.get(self.url + (path or self.metrics_path), params=kwargs or None, **options)

    def samples(self, **request_options: Any) -> Samples:
        """/metrics parsed: (sample name, sorted label items) -> value."""
        response = self.get(**request_options)
        assert response.status_code == 200, response.text
        return parse(response.text)

    def value(self, name: str, **labels: str) -> float | None:
        """One sample of /metrics, or None."""
        return self.samples().get((name, tuple(sorted(labels.items()))))

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _logged(what: str, log: Path, check):
    """Wait for a readiness check; on timeout, show the end of the process's log."""
    try:
        return wait_for(check, timeout=30, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}") from None


@contextmanager
def exporter(tmp: Path, db: Path | None, *, coverage: Path | None = None, e2e_report: Path | None = None,
             config: Path | None = None, extra: list[str] | None = None, ready: bool = True,
             url: str | None = None, scheme: str = "http", env: dict[str, str] | None = None,
             metrics_path: str = "/metrics", **request_options: Any) -> Iterator[Service]:
    """``python -m pipeline_exporter`` on a free port (database ``db``, or any ``url``, or neither: the
    environment's); waits for /-/ready, or only /-/healthy when ``ready`` is False;
    ``request_options`` (auth, verify, cert) serve that wait; ``env`` adds environment variables."""
    port = free_port()
    args = [sys.executable, "-m", "pipeline_exporter", "--web.listen-address", f"127.0.0.1:{port}"]
    if url or db:
        args += ["--database-url", url or f"sqlite:///{db}"]
    # Without a report file the default paths (under cwd=tmp) do not exist: those sources are unused.
    if coverage:
        args += ["--coverage-file", str(coverage)]
    if e2e_report:
        args += ["--e2e-report", str(e2e_report)]
    if config:
        args += ["--config.file", str(config)]
    args += extra or []
    log = tmp / f"exporter-{port}.log"
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    with running(args, log, env=environ, cwd=tmp) as proc:
        service = Service(f"{scheme}://127.0.0.1:{port}", f"127.0.0.1:{port}", log, proc, metrics_path)
        path = "/-/ready" if ready else "/-/healthy"

        # Stop waiting as soon as the process is gone: its log says why.
        _logged("the exporter", log, lambda: proc.poll() is not None
                or service.get(path, **request_options).status_code == 200)
        if proc.poll() is not None:
            raise AssertionError(
                f"the exporter exited with {proc.returncode}\n--- log ---\n{service.log_text()[-3000:]}"
            )
        yield service


def prometheus_config(
    tmp: Path,
    exporter_address: str | None,
    alertmanager_address: str | None = None,
    interval: str = "1s",
    *,
    extra_targets: list[str] | None = None,
    alertmanagers: list[str] | None = None,
    remote_write: list[dict] | None = None,
    overrides: dict | None = None,
) -> Path:
    """The shipped prometheus.yml with loopback targets, absolute rule paths and short intervals.

    ``extra_targets`` adds exporters to the pipeline-exporter job; ``alertmanagers`` sends to
    several Alertmanagers (with ``alertmanager_address``, if given); ``remote_write`` sets that
    section; ``overrides`` replaces top-level keys last (e.g. ``scrape_configs``, ``rule_files``).
    """
    config = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str(REPO / "alerts" / "*.yml")]
    targets = [t for t in [exporter_address, *(extra_targets or [])] if t]
    config["scrape_configs"] = [
        dict(job, static_configs=[{"targets": targets}])
        for job in config["scrape_configs"]
        if job["job_name"] == "pipeline-exporter"
    ]
    managers = [a for a in [alertmanager_address, *(alertmanagers or [])] if a]
    if managers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": managers}]}]}
    else:
        config.pop("alerting", None)
    if remote_write:
        config["remote_write"] = remote_write
    config.update(overrides or {})
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
def prometheus(
    tmp: Path, exporter_address: str | None, alertmanager_address: str | None = None, interval: str = "1s", **options
) -> Iterator[Service]:
    """A real Prometheus scraping the exporter with the shipped rule files.

    ``options`` go to :func:`prometheus_config` (extra_targets, alertmanagers, remote_write, overrides).
    """
    config = prometheus_config(tmp, exporter_address, alertmanager_address, interval, **options)
    with _binary(
        tmp,
        "prometheus",
        [f"--config.file={config}", f"--storage.tsdb.path={tmp / 'prometheus-data'}", "--web.enable-lifecycle"],
    ) as service:
        yield service


def query(prom: Service, expr: str) -> list[dict]:
    """An instant query's result vector (raises on a PromQL error)."""
    body = prom.get("/api/v1/query", query=expr).json()
    if body.get("status") != "success":
        raise AssertionError(f"query failed: {expr}: {body.get('error')}")
    return body["data"]["result"]


def wait_for_scrapes(prom: Service, count: int = 2, timeout: float = 30) -> None:
    """Wait until Prometheus has scraped the exporter ``count`` times successfully."""
    wait_for(
        lambda: (
            query(prom, 'count_over_time(up{job="pipeline-exporter"}[5m])')
            and float(query(prom, 'sum(count_over_time(up{job="pipeline-exporter"}[5m]))')[0]["value"][1]) >= count
            and float(query(prom, 'min(up{job="pipeline-exporter"})')[0]["value"][1]) == 1
        ),
        timeout=timeout,
        what=f"{count} successful scrapes of the exporter",
    )


@contextmanager
def alertmanager(tmp: Path, config: Path) -> Iterator[Service]:
    """A single-node Alertmanager (no gossip port) with the given config."""
    with _binary(
        tmp,
        "prometheus-alertmanager",
        [f"--config.file={config}", f"--storage.path={tmp / 'alertmanager-data'}", "--cluster.listen-address="],
    ) as service:
        yield service


@contextmanager
def alertmanager_cluster(
    tmp: Path,
    config: Path,
    nodes: int = 2,
    *,
    peer_timeout: str = "1s",
    gossip_interval: str = "100ms",
    pushpull_interval: str = "1s",
    settle_timeout: float = 30,
) -> Iterator[list[Service]]:
    """``nodes`` Alertmanagers gossiping on loopback, each with every other as --cluster.peer.

    Yields once every node reports a settled ("ready") cluster of ``nodes`` peers, so an alert
    posted after that is deduplicated. Each node keeps its data and log in ``tmp/am-N/``.
    """
    from contextlib import ExitStack

    cluster_ports = [free_port() for _ in range(nodes)]
    with ExitStack() as stack_:
        services = []
        for index, port in enumerate(cluster_ports):
            home = tmp / f"am-{index}"
            home.mkdir(parents=True, exist_ok=True)
            peers = [f"--cluster.peer=127.0.0.1:{other}" for other in cluster_ports if other != port]
            services.append(
                stack_.enter_context(
                    _binary(
                        home,
                        "prometheus-alertmanager",
                        [
                            f"--config.file={config}",
                            f"--storage.path={home / 'data'}",
                            f"--cluster.listen-address=127.0.0.1:{port}",
                            *peers,
                            f"--cluster.peer-timeout={peer_timeout}",
                            f"--cluster.gossip-interval={gossip_interval}",
                            f"--cluster.pushpull-interval={pushpull_interval}",
                        ],
                    )
                )
            )

        def settled() -> bool:
            for service in services:
                cluster = service.get("/api/v2/status").json()["cluster"]
                if cluster.get("status") != "ready" or len(cluster.get("peers") or []) != nodes:
                    return False
            return True

        try:
            wait_for(settled, timeout=settle_timeout, interval=0.2, what=f"a settled cluster of {nodes} Alertmanagers")
        except AssertionError as exc:
            logs = "\n".join(
                f"--- {s.log.parent.name}/{s.log.name} ---\n{s.log.read_text(errors='replace')[-2000:]}"
                for s in services
            )
            raise AssertionError(f"{exc}\n{logs}") from None
        yield services


@contextmanager
def victoria_metrics(tmp: Path) -> Iterator[Service]:
    """Debian's single-node ``victoria-metrics`` on a free loopback port, storing in ``tmp``.

    Prometheus remote-writes to ``<url>/api/v1/write``; ``query(service, expr)`` reads back
    through its Prometheus-compatible ``/api/v1/query``. ``-search.latencyOffset=1s`` makes
    samples queryable one second after they arrive (the default hides the last 30 s).
    """
    binary = require_binary("victoria-metrics")
    port = free_port()
    data = tmp / "victoria-metrics-data"
    log = tmp / "victoria-metrics.log"
    args = [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={data}",
        "-retentionPeriod=1",
        "-search.latencyOffset=1s",
        "-search.disableCache",
    ]
    with running(args, log, cwd=tmp):
        service = Service(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", log)
        _logged("victoria-metrics", log, lambda: service.get("/health").status_code == 200)
        yield service
