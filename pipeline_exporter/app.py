"""The running exporter: config -> database -> jobs -> scheduler -> snapshot, and its registry."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from pipeline_exporter.collectors.self import SelfCollector
from pipeline_exporter.collectors.snapshot import SnapshotCollector
from pipeline_exporter.config import Config, load_config
from pipeline_exporter.db import GRACE, Database
from pipeline_exporter.errors import CollectionError
from pipeline_exporter.jobs import build_jobs, probe_columns
from pipeline_exporter.memory import Memory
from pipeline_exporter.redact import mask_url
from pipeline_exporter.scheduler import Scheduler
from pipeline_exporter.seen import keeps
from pipeline_exporter.snapshot import Snapshot
from pipeline_exporter.states import FastPath

log = logging.getLogger("pipeline_exporter")


class Pipeline:
    """One database with its jobs, scheduler and snapshot."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time, memory: Memory | None = None):
        self.config = config
        # No socket read waits longer than the longest query may take (the watchdog is the real bound).
        longest = max([query.timeout for query in config.queries] + [config.checks.integrity_timeout, 10.0])
        self.db = Database(config.database_url, pool_size=config.max_concurrent_queries,
                           read_timeout=longest + GRACE + 5)
        for query in config.queries:
            query.sql_for(self.db.dialect)  # a query without SQL for this dialect fails at start
        self.memory = memory or Memory()
        self.jobs = build_jobs(config, self.db, self.memory)
        self.snapshot = Snapshot([job.info for job in self.jobs], clock, keeps(config.queries))
        self.scheduler = Scheduler(self.jobs, self.snapshot, clock, workers=config.max_concurrent_queries)

    def probe(self, deadline: float | None = None) -> tuple[int, dict[str, str]]:
        """Check every query's result columns when the database answers.

        Returns how many were checked and the errors of queries the database refused (bad SQL, a
        missing table). A ConfigError (a metric reads a column the query does not return)
        propagates; a database that does not answer, a locked one, or the ``deadline``
        (time.monotonic) passing leaves the rest to the scheduler.
        """
        checked, failed = 0, {}
        for query in self.config.queries:
            if deadline is not None and time.monotonic() > deadline:
                break
            try:
                probe_columns(query, self.db, dict(self.config.parameters))
                checked += 1
            except CollectionError as exc:
                if exc.kind in ("connection", "timeout") or "locked" in str(exc):
                    break  # every further query would wait as long: the scheduler reports it once
                failed[query.name] = str(exc)
        return checked, failed

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> bool:
        """Stop collecting; False when a run could not be cut short in time (it is abandoned)."""
        ended = self.scheduler.stop(interrupt=self.db.interrupt)
        self.db.close()
        return ended


class _Forward(Collector):
    """Forwards to a collector built from the current pipeline, so a reload swaps it atomically, and
    adds the config's const labels to every sample."""

    def __init__(self, make: Callable[[], Collector], const_labels: Callable[[], Mapping[str, str]]):
        self.make = make
        self.const_labels = const_labels

    def collect(self) -> Iterable[Metric]:
        labels = self.const_labels()
        for family in self.make().collect():
            if labels:
                family.samples = [sample._replace(labels={**sample.labels, **labels}) for sample in family.samples]
            yield family


class Exporter:
    """Owns the current pipeline, reloads it on demand, and registers the collectors once."""

    def __init__(self, config_path: Path | None, overrides: Mapping[str, Any],
                 clock: Callable[[], float] = time.time, registry: CollectorRegistry | None = None):
        self.config_path = config_path
        self.overrides = dict(overrides)
        self.clock = clock
        self.reload_ok = True
        self._lock = threading.Lock()
        self.pipeline = Pipeline(load_config(config_path, overrides), clock)
        self.registry = registry or CollectorRegistry()
        const_labels = lambda: self.pipeline.config.const_labels  # noqa: E731 - read at each scrape (reloads)
        self.registry.register(_Forward(lambda: SnapshotCollector(self.pipeline.snapshot), const_labels))
        self.registry.register(_Forward(lambda: SelfCollector(
            self.pipeline.snapshot, self.pipeline.memory.caps, lambda: self.pipeline.db.up, lambda: self.reload_ok,
            self.fast_paths), const_labels))

    def fast_paths(self) -> dict[str, FastPath]:
        """Per query of the running config with a fast path: whether it is in use, and why not."""
        return self.pipeline.memory.fast_paths(query.name for query in self.pipeline.config.queries)

    def add_process_metrics(self) -> None:
        """process_cpu_seconds_total, process_resident_memory_bytes, ... (Linux), with the const labels
        like every other series; the running exporter's, not the tests' (they compare exact pages)."""
        process = ProcessCollector(registry=None)
        self.registry.register(_Forward(lambda: process, lambda: self.pipeline.config.const_labels))

    @property
    def snapshot(self) -> Snapshot:
        return self.pipeline.snapshot

    def start(self) -> None:
        log.info("starting", extra={"database": mask_url(self.pipeline.config.database_url),
                                    "queries": len(self.pipeline.config.queries)})
        self.pipeline.start()

    def stop(self) -> bool:
        return self.pipeline.stop()

    def ready(self) -> bool:
        """Ready once every job ran once and the database answered."""
        return self.pipeline.snapshot.ready() and bool(self.pipeline.db.up)

    def reload(self) -> bool:
        """Load the config again; on any error keep the running one and report the failure."""
        with self._lock:
            new = None
            memory = self.pipeline.memory
            saved = memory.checkpoint()  # a failed reload leaves the running queries' states as they were
            try:
                config = load_config(self.config_path, self.overrides)
                new = Pipeline(config, self.clock, memory)
                new.probe()
            except Exception as exc:
                if new is not None:
                    new.db.close()
                memory.restore(saved)
                self.reload_ok = False
                self.pipeline.snapshot.touch()  # the cached page says so at the next scrape
                log.error("reload failed, keeping the running configuration", extra={"error": str(exc)})
                return False
            # Stop the old collection first, so that no run lands in the old snapshot after its
            # states are taken over; scrapes keep reading the old snapshot until the swap.
            old = self.pipeline
            if not old.stop():
                # A run of the old pipeline is stuck holding the counting states: the new pipeline gets
                # states of its own (the counter guard still keeps every series from going down).
                log.warning("a run of the old configuration is still going; its queries start counting anew")
                new.db.close()
                memory.forget_states()
                new = Pipeline(config, self.clock, memory)
            new.snapshot.adopt(old.snapshot)
            if new.config.database_url == old.config.database_url:
                new.db.up = old.db.up  # same database: still as reachable as it was
            self.pipeline = new
            self.reload_ok = True
            new.start()
            log.info("configuration reloaded", extra={"queries": len(new.config.queries)})
            return True


def families(registry: CollectorRegistry) -> dict[str, Metric]:
    """The registry's families by name (tests and the status page). A counter whose family name is
    also a gauge's (``x_total`` beside ``x``) is listed under its sample name ``x_total``."""
    listed = list(registry.collect())
    others = {family.name for family in listed if family.type != "counter"}
    return {f"{family.name}_total" if family.type == "counter" and family.name in others else family.name: family
            for family in listed}
