"""Grafana dashboards as code: one module per page of the old Streamlit dashboard."""

from . import compliance, conversations, health, outreach, overview, system

# uid -> builder; the uids are fixed by the contract (alerts-and-dashboards.md).
DASHBOARDS = {
    "pipeline-overview": overview.build,
    "pipeline-health": health.build,
    "pipeline-outreach": outreach.build,
    "pipeline-conversations": conversations.build,
    "pipeline-compliance": compliance.build,
    "pipeline-system": system.build,
}
