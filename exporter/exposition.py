"""The rendered /metrics text, cached per snapshot version so 50 scrapers do not rebuild it 50 times.

Collectors still yield fresh families on every ``registry.collect()``; only the HTTP path reuses the
bytes while nothing was recorded (``Snapshot.version``) and for at most ``max_age`` seconds, so
values turning stale and the host and self metrics never lag by more than that.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from prometheus_client import CollectorRegistry, generate_latest

from exporter.snapshot import Snapshot


class ExpositionCache:
    """``render()`` gives the text exposition, rebuilt when the snapshot changed or it is older than max_age."""

    def __init__(self, registry: CollectorRegistry, snapshot: Callable[[], Snapshot], max_age: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.registry = registry
        self.snapshot = snapshot  # a callable: a reload swaps the pipeline and its snapshot
        self.max_age = max_age
        self.clock = clock
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._at = 0.0
        self._body = b""

    def render(self) -> bytes:
        """The exposition bytes; one scraper rebuilds them while concurrent ones wait and reuse them."""
        snap = self.snapshot()
        key = (id(snap), snap.version)
        with self._lock:
            if key != self._key or self.clock() - self._at > self.max_age:
                self._body = generate_latest(self.registry)
                self._key, self._at = key, self.clock()
            return self._body
