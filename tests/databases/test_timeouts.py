"""A slow query is cancelled inside the server at its timeout, counted as a timeout, and hurts nothing else."""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import wait_for
from tests.support.servers import Server, make_exporter, samples

SLOW_CONFIG = """
packs: [method333]
queries:
  slow:
    timeout: 1s
    sql:
      postgresql: SELECT 1 AS n, pg_sleep(5) AS slept
      mysql: SELECT 1 AS n, SLEEP(5) AS slept
    metrics: [{name: slow_query_result, type: gauge, help: A query that sleeps past its timeout., value: n}]
"""


def sleeping(server: Server) -> list[tuple]:
    """The server's sessions still running the slow statement."""
    if server.kind == "postgresql":
        sql = ("SELECT pid, query FROM pg_stat_activity WHERE state = 'active' "
               "AND query LIKE '%pg_sleep(5)%' AND pid <> pg_backend_pid()")
    else:
        sql = ("SELECT id, info FROM information_schema.processlist "
               "WHERE info LIKE '%SLEEP(5)%' AND id <> CONNECTION_ID()")
    return server.execute(sql)[0]


def test_slow_query_is_cancelled_in_the_server(server: Server, demo_database: str, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(SLOW_CONFIG)
    exporter = make_exporter(server.url(demo_database), tmp_path, config)
    try:
        exporter.pipeline.scheduler.run_job("slow")  # returns once the statement stopped: 1 s timeout, 5 s sleep
        state = next(s for s in exporter.snapshot.states() if s.info.name == "slow")
        assert state.error_kind == "timeout", state.error
        assert state.errors_total == 1
        # Cancelled by the server itself, not just abandoned by the client.
        assert sleeping(server) == []
        # The pooled connection is still usable, and every other query is unaffected.
        exporter.pipeline.scheduler.run_once()
        exposed = samples(exporter)
        assert exposed[("pipeline_exporter_query_errors_total", (("query", "slow"),))] == 2.0
        others = {name: v for (name, labels), v in exposed.items()
                  if name == "pipeline_exporter_query_errors_total" and dict(labels)["query"] != "slow"
                  and dict(labels)["query"] not in ("coverage_report", "e2e_report")}
        assert others and set(others.values()) == {0.0}
        assert exposed[("pipeline_sites_created_total", ())] == 2_000
        assert exposed[("pipeline_exporter_database_up", ())] == 1.0
        assert ("slow_query_result", ()) not in exposed
        wait_for(lambda: sleeping(server) == [], timeout=5, what="no sleeping statement left")
    finally:
        exporter.stop()
