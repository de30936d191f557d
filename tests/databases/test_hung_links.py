"""A database link that stops answering, against the real exporter process on PostgreSQL and MariaDB.

The exporter reaches the server through a loopback proxy. When the proxy stops forwarding (every
connection stays open, no byte moves), server-side statement timeouts cannot fire: the exporter's
own deadline must abandon the connection, count the error and set ``query_up`` to 0; when the link
comes back it recovers alone; and SIGTERM ends the process while the link hangs.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support import stack
from tests.support.procs import wait_for
from tests.support.proxy import pausable_proxy
from tests.support.servers import Server

CONFIG = """
packs: []
defaults: {interval: 500ms, timeout: 1s}
queries:
  site_count:
    stale_after: 60s
    sql: SELECT COUNT(*) AS n FROM sites
    metrics: [{name: hung_sites, type: gauge, help: Sites., value: n}]
checks: {size_interval: 1s, host_interval: 1s}
"""


def test_a_link_that_stops_answering_is_abandoned_recovers_and_never_holds_up_sigterm(
        server: Server, demo_database: str, tmp_path: Path) -> None:
    direct = make_url(server.url(demo_database))
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    with pausable_proxy(
        (direct.host or "127.0.0.1", direct.port or {"postgresql": 5432}.get(server.kind, 3306))
    ) as proxy:
        url = direct.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with stack.exporter(tmp_path, None, url=url, config=config) as service:

            def up() -> float | None:
                return service.value("pipeline_exporter_query_up", query="site_count")

            wait_for(lambda: (service.value("hung_sites") or 0) > 0, timeout=20, what="the first count")
            errors = service.value("pipeline_exporter_query_errors_total", query="site_count")
            proxy.pause()
            wait_for(lambda: up() == 0, timeout=30, what="query_up 0 while the link hangs")
            assert service.value("pipeline_exporter_query_errors_total", query="site_count") > errors
            assert service.value("pipeline_exporter_database_up") == 0
            assert "connection abandoned" in service.log_text() or "did not answer a ping" in service.log_text()
            assert service.value("hung_sites") > 0, "the last good value stays until it is stale"

            proxy.resume()
            wait_for(lambda: up() == 1, timeout=30, what="recovery when the link returns")

            proxy.pause()
            wait_for(lambda: up() == 0, timeout=30, what="the link hanging again")
            service.proc.send_signal(signal.SIGTERM)
            try:
                code = service.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                raise AssertionError("SIGTERM did not end the exporter within 10 s while the link hung") from None
            assert code == 0, service.log_text()[-2000:]
