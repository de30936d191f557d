"""The rendered /metrics text, cached per snapshot version so 50 scrapers do not rebuild it 50 times.

Collectors still yield fresh families on every ``registry.collect()``; only the HTTP path reuses the
bytes while nothing was recorded (``Snapshot.version``) and for at most ``max_age`` seconds, so
values turning stale and the host and self metrics never lag by more than that.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from pipeline_exporter.snapshot import Snapshot


def name_clash(families: Iterable[Metric]) -> bool:
    """True when a counter's family name is also a gauge's (``x_total`` beside ``x``): OpenMetrics
    names both ``x``."""
    listed = [(family.name, family.type) for family in families]
    counters = {name for name, kind in listed if kind == "counter"}
    return any(name in counters for name, kind in listed if kind != "counter")

class ExpositionCache:
    """``render(accept)`` gives the exposition in the format the client accepts, rebuilt when the
    snapshot changed or it is older than max_age."""

    def __init__(self, registry: CollectorRegistry, snapshot: Callable[[], Snapshot], max_age: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.registry = registry
        self.snapshot = snapshot  # a callable: a reload swaps the pipeline and its snapshot
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._at = 0.0
        self._bodies: dict[tuple[str, bool], bytes] = {}
        self._openmetrics = True  # (content type, gzipped) -> body, for the key

    def openmetrics_ok(self) -> bool:
        """False while a counter ``x_total`` and a gauge ``x`` are both served: OpenMetrics names both
        families ``x`` and strict parsers refuse the page, so such a page is served as text 0.0.4
        (e.g. pipeline_conversation_messages_total beside pipeline_conversation_message_rows)."""
        return not name_clash(self.registry.collect())

    def render_only(self, names: set[str], accept: str = "", gzipped: bool = False) -> tuple[bytes, str]:
        """(body, content type) of only the named families (``?name[]=...``), not cached."""
        registry = self.registry.restricted_registry(names)
        encoder, content_type = choose_encoder("" if name_clash(registry.collect()) else accept)
        body = encoder(registry)
        return (gzip.compress(body, compresslevel=1) if gzipped else body), content_type

    def render(self, accept: str = "", gzipped: bool = False) -> tuple[bytes, str]:
        """(body, content type); one scraper builds a variant while concurrent ones wait and reuse it."""
        snap = self.snapshot()
        key = (id(snap), snap.version)
        with self._lock:
            if key != self._key or self.clock() - self._at > self.max_age:
                self._bodies.clear()
                self._key, self._at = key, self.clock()
                self._openmetrics = self.openmetrics_ok()
            encoder, content_type = choose_encoder(accept if self._openmetrics else "")
            if (content_type, False) not in self._bodies:
                self._bodies[content_type, False] = encoder(self.registry)
            if gzipped and (content_type, True) not in self._bodies:
                self._bodies[content_type, True] = gzip.compress(self._bodies[content_type, False], compresslevel=1)
            return self._bodies[content_type, gzipped], content_type
