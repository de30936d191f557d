"""The method333 pack runs unchanged on PostgreSQL and MariaDB/MySQL and gives SQLite's numbers.

The same demo rows (same seed, same ``now``) go into SQLite, PostgreSQL and MariaDB; one collection
cycle at the same fixed clock must give every contract family the same series with the same values
(floats within a tolerance, histograms bucket by bucket).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline_exporter.config import load_config
from pipeline_exporter.db import Database
from tests.support.servers import Server, make_exporter, samples

PACK_FAMILIES = sorted({metric.name for query in load_config().queries for metric in query.metrics})
HISTOGRAMS = sorted({metric.name for query in load_config().queries for metric in query.metrics
                     if metric.type == "histogram"})


def collect(url: str, tmp: Path) -> tuple[dict[tuple[str, tuple], float], dict[str, tuple[str | None, str | None]]]:
    """One cycle of every job: the exposed samples and each job's (error kind, error)."""
    exporter = make_exporter(url, tmp)
    try:
        exporter.pipeline.scheduler.run_once()
        errors = {s.info.name: (s.error_kind, s.error) for s in exporter.snapshot.states()}
        return samples(exporter), errors
    finally:
        exporter.stop()


def family_of(sample: str) -> str:
    """The family a sample belongs to (counters and histograms add suffixes)."""
    for suffix in ("_bucket", "_count", "_sum"):
        if sample.endswith(suffix) and sample[:-len(suffix)] in HISTOGRAMS:
            return sample[:-len(suffix)]
    return sample


def by_family(exposed: dict[tuple[str, tuple], float]) -> dict[str, dict[tuple[str, tuple], float]]:
    out: dict[str, dict[tuple[str, tuple], float]] = {}
    for key, val in exposed.items():
        name = family_of(key[0])
        if name in PACK_FAMILIES:
            out.setdefault(name, {})[key] = val
    return out


@pytest.fixture(scope="session")
def sqlite_result(demo_sqlite: Path, tmp_path_factory: pytest.TempPathFactory):
    return collect(f"sqlite:///{demo_sqlite}", tmp_path_factory.mktemp("sqlite-run"))


@pytest.fixture(scope="session")
def server_result(server: Server, demo_database: str, tmp_path_factory: pytest.TempPathFactory):
    return collect(server.url(demo_database), tmp_path_factory.mktemp(f"{server.kind}-run"))


def test_every_query_succeeds_on_the_server(server_result) -> None:
    _, errors = server_result
    failing = {job: err for job, err in errors.items() if err[0] and job not in ("coverage_report", "e2e_report")}
    assert failing == {}


@pytest.mark.parametrize("family", PACK_FAMILIES)
def test_family_matches_sqlite(family: str, sqlite_result, server_result) -> None:
    expected = by_family(sqlite_result[0]).get(family, {})
    got = by_family(server_result[0]).get(family, {})
    assert expected, f"{family} is empty on SQLite: the demo should feed every contract family"
    assert sorted(got) == sorted(expected)
    different = {key: (expected[key], got[key]) for key in expected
                 if not math.isclose(expected[key], got[key], rel_tol=1e-9, abs_tol=1e-6)}
    assert different == {}


def test_histograms_are_compared_bucket_by_bucket(sqlite_result) -> None:
    exposed = by_family(sqlite_result[0])
    for name in HISTOGRAMS:
        buckets = [key for key in exposed[name] if key[0] == f"{name}_bucket"]
        assert len({dict(labels)["le"] for _, labels in buckets}) > 2, name


def test_column_probe_passes_on_the_server(server: Server, demo_database: str, tmp_path: Path) -> None:
    # --check-config wraps every query as SELECT * FROM (...) LIMIT 0 before the first run.
    exporter = make_exporter(server.url(demo_database), tmp_path)
    try:
        assert exporter.pipeline.probe() == (len(exporter.pipeline.config.queries), {})
    finally:
        exporter.stop()


def test_database_size_is_the_servers_own_figure(server: Server, demo_database: str, server_result) -> None:
    size = server_result[0][("pipeline_database_size_bytes", ())]
    if server.kind == "postgresql":
        [[(expected,)]] = server.execute("SELECT pg_database_size(current_database())", database=demo_database)
        # Autovacuum and hint bits may change the file size between the two readings.
        assert size == pytest.approx(float(expected), rel=0.05)
    else:
        assert size > 100_000
    assert server_result[0][("pipeline_exporter_database_up", ())] == 1.0


@pytest.mark.parametrize("scheme", ["plain", "alias", "explicit"])
def test_urls_without_a_driver_use_the_installed_one(server: Server, demo_database: str, scheme: str) -> None:
    # postgresql:// and mysql:// (and postgres://, mariadb://) pick psycopg (3) and PyMySQL, the extras'
    # drivers; postgresql+psycopg2:// stays accepted where psycopg2 is installed.
    name = {("postgresql", "plain"): "postgresql", ("postgresql", "alias"): "postgres",
            ("postgresql", "explicit"): "postgresql+psycopg2", ("mysql", "plain"): "mysql",
            ("mysql", "alias"): "mariadb", ("mysql", "explicit"): "mysql+pymysql"}[server.kind, scheme]
    url = server.admin_url.set(drivername=name, database=demo_database).render_as_string(hide_password=False)
    db = Database(url)
    try:
        assert db.dialect == server.kind
        expected = {"postgresql": "psycopg2" if scheme == "explicit" else "psycopg", "mysql": "pymysql"}[server.kind]
        assert db.url.get_driver_name() == expected
        assert db.fetch(["SELECT COUNT(*) FROM sites"], {}, 5.0)[0].rows == [(2_000,)]
    finally:
        db.close()
