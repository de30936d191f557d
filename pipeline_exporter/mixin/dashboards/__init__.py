"""Grafana dashboards as code: one module per page of the old Streamlit dashboard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline_exporter.mixin.dashboards import compliance, conversations, health, outreach, overview, system
from pipeline_exporter.mixin.dashboards.common import Context

# uid -> builder; the uids are fixed by the contract (alerts-and-dashboards.md).
DASHBOARDS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "pipeline-overview": overview.build,
    "pipeline-health": health.build,
    "pipeline-outreach": outreach.build,
    "pipeline-conversations": conversations.build,
    "pipeline-compliance": compliance.build,
    "pipeline-system": system.build,
}
