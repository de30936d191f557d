"""The cached /metrics page as the HTTP server's event loop asks for it (``ExpositionCache.lookup``):
never blocking, one build for a burst, never a page of an older snapshot; and the page built family
by family is the encoder's page, byte for byte."""

from __future__ import annotations

import gzip
import socket
import threading
from concurrent.futures import Future

from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from pipeline_exporter.exposition import ExpositionCache
from pipeline_exporter.httpserver import ServerLimits
from pipeline_exporter.web import WebState, serve
from tests.support.known_rows import ROWS
from tests.support.procs import wait_for
from tests.support.sqlite import ago, build_db
from tests.unit.test_incremental import Clock, cached_exporter, exporter_on, insert

OPENMETRICS = "application/openmetrics-text;version=1.0.0"


def settled(found):
    """lookup's answer once its build (if it named one) is done."""
    if isinstance(found, Future):
        found.result(timeout=30)
    return found


def test_the_page_built_family_by_family_is_the_encoders_page_after_every_change(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    clock = Clock()
    exporter = exporter_on(db, clock)
    exporter.pipeline.scheduler.run_once()
    cache = ExpositionCache(exporter.registry, lambda: exporter.snapshot)
    for round_ in range(3):
        body, _ = cache.render()
        assert body == generate_latest(exporter.registry), f"text, round {round_}"
        om, _ = cache.render(OPENMETRICS)
        assert om == generate_openmetrics(exporter.registry), f"OpenMetrics, round {round_}"
        assert gzip.decompress(cache.render("", gzipped=True)[0]) == body
        # A change in one query's families: the others' text is reused, the page still the encoder's.
        insert(db, "opt_outs", [{"channel": "sms", "contact": f"+1555{round_}", "created_at": ago(1)}])
        clock.now += 60
        exporter.pipeline.scheduler.run_job("opt_outs")
    assert b'pipeline_opt_outs_total{channel="sms"} 4.0' in cache.render()[0]


def test_lookup_never_blocks_and_never_serves_an_older_snapshot(tmp_path):
    db, clock, exporter, ticks, cache = cached_exporter(tmp_path)
    first = cache.lookup()
    assert isinstance(first, Future), "nothing built yet: a build to wait for"
    assert cache.lookup() is first, "a burst waits for one build"
    settled(first)
    body, content_type = cache.lookup()
    assert body == generate_latest(exporter.registry) and content_type.startswith("text/plain")
    assert isinstance(cache.lookup("", gzipped=True), Future), "each variant is built once, then served"

    insert(db, "opt_outs", [{"channel": "sms", "contact": "+15559", "created_at": ago(1)}])
    clock.now += 60
    exporter.pipeline.scheduler.run_job("opt_outs")
    moved = cache.lookup()
    assert isinstance(moved, Future), "the snapshot recorded: its page is waited for, the old one not served"
    settled(moved)
    fresh, _ = cache.lookup()
    assert b'pipeline_opt_outs_total{channel="sms"} 2.0' in fresh

    ticks[0] += 1.5  # older than max_age, same snapshot: served while a rebuild runs behind it
    assert cache.lookup()[0] is fresh  # type: ignore[index]
    ticks[0] += 1.0  # older than twice max_age: waited for
    assert isinstance(cache.lookup(), Future)


def test_a_scrape_after_a_record_never_gets_the_build_already_running(tmp_path):
    db = build_db(tmp_path / "sites.db", ROWS)
    clock = Clock()
    exporter = exporter_on(db, clock)
    exporter.pipeline.scheduler.run_once()
    cache = ExpositionCache(exporter.registry, lambda: exporter.snapshot)
    with cache._lock:  # the builder stays inside its build of the snapshot as it is now
        before = cache.lookup()
        insert(db, "opt_outs", [{"channel": "sms", "contact": "+15559", "created_at": ago(1)}])
        clock.now += 60
        exporter.pipeline.scheduler.run_job("opt_outs")
        after = cache.lookup()
        assert isinstance(after, Future) and after is not before
    assert b'pipeline_opt_outs_total{channel="sms"} 2.0' in after.result(timeout=30)[0]


def test_while_scraped_often_a_record_builds_the_page_ahead_of_the_next_scrape(tmp_path):
    db, clock, exporter, ticks, cache = cached_exporter(tmp_path)
    settled(cache.lookup("", gzipped=True))
    built = cache._page

    def record(contact: str) -> None:
        insert(db, "opt_outs", [{"channel": "sms", "contact": contact, "created_at": ago(1)}])
        clock.now += 60
        exporter.pipeline.scheduler.run_job("opt_outs")

    ticks[0] += 3.0  # nobody scraped for longer than 2 * max_age: a record builds nothing
    record("+15558")
    assert cache._page is built and not cache._pending
    settled(cache.lookup("", gzipped=True))  # a scraper again, then a record: built without a scrape
    record("+15559")
    wait_for(lambda: cache._page.key[1] == exporter.snapshot.version, timeout=30, what="the page built ahead")
    body, _ = cache.lookup("", gzipped=True)  # type: ignore[misc]
    assert b'pipeline_opt_outs_total{channel="sms"} 3.0' in gzip.decompress(body)


def test_a_burst_of_scrapes_past_max_requests_is_answered_not_refused(tmp_path):
    """--web.max-requests bounds the request threads; a cached page needs none, so 30 scrapers at
    once with a cap of 2 all get the page (before: everyone past the cap got 503)."""
    db = build_db(tmp_path / "sites.db", ROWS)
    exporter = exporter_on(db, Clock())
    exporter.pipeline.scheduler.run_once()
    server, thread = serve(exporter, "127.0.0.1:0", WebState(), ServerLimits(max_requests=2))
    port = server.server_address[1]
    answers: list[bytes] = []
    lock = threading.Lock()
    start = threading.Barrier(30)

    def scrape() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            start.wait(30)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        with lock:
            answers.append(data)

    try:
        threads = [threading.Thread(target=scrape) for _ in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        server.shutdown()
        thread.join(10)
    assert len(answers) == 30
    statuses = sorted(answer.split(b" ", 2)[1].decode() for answer in answers)
    assert statuses == ["200"] * 30, statuses
    bodies = {answer.partition(b"\r\n\r\n")[2] for answer in answers}
    assert all(b"pipeline_opt_outs_total" in body for body in bodies)
