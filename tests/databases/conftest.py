"""Fixtures of the database suites: each real server in turn, demo and scratch databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_exporter.packs.method333.demo import build_demo, build_demo_url
from tests.support.servers import NOW, SEED, SERVERS, SITES, Server, connect_server, unique


@pytest.fixture(scope="session", params=SERVERS)
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    """Each real server in turn (PostgreSQL, MariaDB/MySQL)."""
    handle = connect_server(request.param)
    yield handle
    handle.admin.dispose()


@pytest.fixture(scope="session")
def demo_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite reference: the demo at NOW with SITES sites."""
    path = tmp_path_factory.mktemp("sqlite-demo") / "sites.db"
    build_demo(path, sites=SITES, seed=SEED, now=NOW)
    return path


@pytest.fixture(scope="session")
def demo_database(server: Server) -> Iterator[str]:
    """The name of a throwaway database on the server holding the same demo rows; dropped afterwards."""
    name = unique("pe_demo")
    server.create_database(name)
    try:
        build_demo_url(server.url(name), sites=SITES, seed=SEED, now=NOW)
        yield name
    finally:
        server.drop_database(name)


@pytest.fixture
def scratch_database(server: Server) -> Iterator[str]:
    """An empty throwaway database on the server, dropped afterwards."""
    name = unique("pe_scratch")
    server.create_database(name)
    try:
        yield name
    finally:
        server.drop_database(name)
