"""The fault suites' fast config and launchers: the real exporter process on a small database."""

from __future__ import annotations

import textwrap
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tests.support import stack

# Fast inline queries (the built-in pack runs every 60 s): a fault test waits seconds, not minutes.
FAST_QUERIES = """
  site_count:
    interval: 500ms
    sql: SELECT COUNT(*) AS n FROM sites
    metrics: [{name: fault_sites, type: gauge, help: Sites., value: n}]
  opt_out_count:
    interval: 500ms
    sql: SELECT channel, COUNT(*) AS n FROM opt_outs GROUP BY channel
    metrics: [{name: fault_opt_outs, type: gauge, help: Opt-outs by channel., value: n, labels: [channel]}]
  site_errors:
    interval: 500ms
    sql: SELECT error_type, COUNT(*) AS n FROM sites WHERE error_type IS NOT NULL GROUP BY error_type
    metrics: [{name: fault_site_errors, type: gauge, help: Sites with an error., value: n, labels: [error_type]}]
"""
FAST_CHECKS = """
files: {interval: 500ms}
checks: {size_interval: 500ms, integrity_interval: 1s, host_interval: 1s}
"""


def fast_config(tmp: Path, extra_queries: str = "", extra: str = "", name: str = "config.yml") -> Path:
    """A config with no pack, the fast queries above (plus more) and sub-second checks."""
    body = "packs: []\nqueries:\n" + textwrap.indent(
        (textwrap.dedent(FAST_QUERIES).strip("\n") + "\n" + textwrap.dedent(extra_queries)).strip("\n"), "  "
    )
    path = tmp / name
    path.write_text(body + "\n" + FAST_CHECKS + textwrap.dedent(extra))
    return path


def exporter(tmp: Path, db: Path | None, config: Path | None = None,
             **kwargs: Any) -> AbstractContextManager[stack.Service]:
    """The shared launcher, with the config as third positional argument as these tests write it."""
    return stack.exporter(tmp, db, config=config, **kwargs)



def web_config(tmp: Path, body: str) -> Path:
    """A --web.config.file with this body."""
    path = tmp / "web.yml"
    path.write_text(body)
    return path
