"""Fixtures and markers shared by every suite.

Every test that starts a process (the exporter, prometheus, promtool, alertmanager, a Python
subprocess) or needs a database server is marked ``e2e``: ``make test-fast`` runs the rest.
Whole suites are marked by their folder; a module elsewhere that starts processes says so with
``pytestmark = pytest.mark.e2e``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import REPO

PROCESS_SUITES = ("e2e", "faults", "scale", "databases", "alerts")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        suite = Path(item.path).relative_to(REPO / "tests").parts[0]
        if suite in PROCESS_SUITES:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's top folder."""
    return REPO
