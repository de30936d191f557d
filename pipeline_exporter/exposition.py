"""The rendered /metrics text, cached per snapshot version so 50 scrapers do not rebuild it 50 times.

Collectors still yield fresh families on every ``registry.collect()``; only the HTTP path reuses the
bytes while nothing was recorded (``Snapshot.version``) and for at most ``max_age`` seconds, so
values turning stale and the host and self metrics never lag by more than that.

``lookup`` is the HTTP server's path for a scrape (on its event loop, so it never blocks): the
current page's bytes, or a future to wait for while one builder thread renders it, so a burst of
scrapers holds no request thread and shares one build (docs/design.md, "HTTP server").
"""

from __future__ import annotations

import functools
import gzip
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

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


@functools.lru_cache(maxsize=64)
def content_type_for(accept: str) -> str:
    """The content type ``choose_encoder`` picks for an Accept header (remembered: scrapers send a few)."""
    return choose_encoder(accept)[1]


class _Families:
    """One family, as the ``collect()`` an encoder asks of a registry."""

    def __init__(self, family: Metric):
        self.family = family

    def collect(self) -> list[Metric]:
        return [self.family]


def _fingerprint(family: Metric) -> Any:
    """Everything of a family the encoders write, hashable; None when some part is not (exemplars,
    native histograms): that family is formatted every time. A NaN value never equals itself, so
    such a family is formatted every time too (a miss, never a wrong page)."""
    try:
        key = (family.name, family.type, family.documentation, family.unit,
               tuple((s.name, tuple(s.labels.items()), s.value, s.timestamp, s.exemplar, s.native_histogram)
                     for s in family.samples))
        hash(key)
    except TypeError:
        return None
    return key


@dataclass(frozen=True)
class _Page:
    """One build: what it was built for, when, and the bodies of every variant asked for since."""

    key: tuple[int, int]
    at: float
    openmetrics: bool
    bodies: dict[tuple[str, bool], bytes]


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
        self._bodies: dict[tuple[str, bool], bytes] = {}  # (content type, gzipped) -> body, for the key
        self._openmetrics = True
        self._families: list[Metric] = []  # collected once per build
        self._texts: dict[str, dict[Any, bytes]] = {}  # content type -> family fingerprint -> text
        self._page: _Page | None = None  # the last build, published whole for lookup()
        self._pending: dict[tuple[str, bool], tuple[Future, tuple[int, int]]] = {}  # variant -> build, its key
        self._pending_lock = threading.Lock()
        self._builder: ThreadPoolExecutor | None = None
        self._asked_at = float("-inf")  # the last lookup(): while scrapers come often, build ahead
        self._wanted: dict[tuple[str, bool], str] = {}  # variants looked up -> an Accept header for each
        self._watched: Snapshot | None = None  # the snapshot whose records start a build ahead

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
                self._families = list(self.registry.collect())  # once per build, for every variant
                # A counter ``x_total`` beside a gauge ``x``: OpenMetrics names both families ``x`` and
                # strict parsers refuse the page, so such a page is served as text 0.0.4 (e.g.
                # pipeline_conversation_messages_total beside pipeline_conversation_message_rows).
                self._openmetrics = not name_clash(self._families)
            encoder, content_type = choose_encoder(accept if self._openmetrics else "")
            if (content_type, False) not in self._bodies:
                self._bodies[content_type, False] = self._encode(encoder, content_type)
            if gzipped and (content_type, True) not in self._bodies:
                self._bodies[content_type, True] = gzip.compress(self._bodies[content_type, False], compresslevel=1)
            self._page = _Page(self._key, self._at, self._openmetrics, dict(self._bodies))
            return self._bodies[content_type, gzipped], content_type

    def _encode(self, encoder: Callable[[Any], bytes], content_type: str) -> bytes:
        """The page, family by family: a family whose samples are the same as in the previous build
        (most of them: a run changes one query's families) reuses its text instead of formatting
        every sample again, prometheus_client's encoder being most of a build's time."""
        openmetrics = content_type.startswith("application/openmetrics-text")
        previous = self._texts.get(content_type, {})
        texts: dict[Any, bytes] = {}
        parts = []
        for family in self._families:
            key = _fingerprint(family)
            text = previous.get(key) if key is not None else None
            if text is None:
                text = encoder(_Families(family))
                if openmetrics:
                    text = text.removesuffix(b"# EOF\n")
            if key is not None:
                texts[key] = text
            parts.append(text)
        self._texts[content_type] = texts  # only this build's: the memory of one page per format
        if openmetrics:
            parts.append(b"# EOF\n")
        return b"".join(parts)

    def lookup(self, accept: str = "", gzipped: bool = False) -> tuple[bytes, str] | Future:
        """Never blocks: (body, content type) when the page for the current snapshot is built, else a
        future of them, resolved once the builder thread has built the page (started after this call,
        so at least as new as the snapshot this call saw).

        A page older than ``max_age`` but not ``2 * max_age`` is still served while a rebuild runs
        behind it, so scrapers polling every second never wait for the age rule (the host and self
        metrics then lag by at most that); a page of an older snapshot is never served.
        """
        self._ahead(accept, gzipped)
        page = self._page
        if page is not None:
            snap = self.snapshot()
            content_type = content_type_for(accept if page.openmetrics else "")
            body = page.bodies.get((content_type, gzipped))
            if body is not None and page.key == (id(snap), snap.version):
                age = self.clock() - page.at
                if age <= self.max_age:
                    return body, content_type
                if age <= 2 * self.max_age:
                    self._build(accept, gzipped)
                    return body, content_type
        return self._build(accept, gzipped)

    def _ahead(self, accept: str, gzipped: bool) -> None:
        """Remember that this variant is scraped, now, and watch the current snapshot's records."""
        self._asked_at = self.clock()
        variant = (content_type_for(accept), gzipped)
        if variant not in self._wanted:
            self._wanted[variant] = accept
        snap = self.snapshot()
        if snap is not self._watched:
            self._watched = snap
            snap.listen(self._recorded)

    def _recorded(self) -> None:
        """A run recorded: while the page is scraped at least every ``2 * max_age`` (a storm, not
        Prometheus every 15 s), build it now, so the next burst finds it built instead of waiting
        for it; each build costs what a scrape would have, and none is made for nobody."""
        if self.clock() - self._asked_at <= 2 * self.max_age:
            for (_, gzipped), accept in list(self._wanted.items()):
                self._build(accept, gzipped)

    def _build(self, accept: str, gzipped: bool) -> Future:
        """One build per variant and snapshot at a time, on one thread: a burst of 50 scrapers
        waits for one. A build asked for after a run recorded is a new one, queued behind the
        running one, so no caller gets a page older than the snapshot it saw."""
        variant = (content_type_for(accept), gzipped)
        snap = self.snapshot()
        key = (id(snap), snap.version)
        with self._pending_lock:
            pending = self._pending.get(variant)
            if pending is not None and pending[1] == key:
                return pending[0]
            if self._builder is None:
                self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exposition")
            future = self._builder.submit(self._render_then_forget, variant, accept, gzipped)
            self._pending[variant] = (future, key)
            return future

    def _render_then_forget(self, variant: tuple[str, bool], accept: str, gzipped: bool) -> tuple[bytes, str]:
        try:
            return self.render(accept, gzipped)
        finally:
            with self._pending_lock:
                pending = self._pending.get(variant)
                if pending is not None and pending[0].running():  # ours: the one running on the thread
                    del self._pending[variant]
