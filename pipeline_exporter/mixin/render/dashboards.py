"""Dashboard declarations to Grafana's classic JSON model: rows, layout, variables, links."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.mixin.render.format import Values
from pipeline_exporter.mixin.render.panels import DS, Links, Panel, metric_query, panel, period_panel

SCHEMA_VERSION = 39
# Bump when the dashboards change in a way users should notice (Grafana shows it in settings).
DASHBOARD_VERSION = 3
TAG = "pipeline"
# The exporter's queries run every minute; the refresh choices of the old status page.
REFRESH = "1m"
REFRESH_CHOICES = ["30s", "1m", "5m", "10m"]
UID_LIMIT = 40

# Grafana's own alerting pages list the rules of the Prometheus datasource and the alerts held by
# the Alertmanager datasource (both provisioned with these names in grafana/provisioning/).
FIRING_ALERTS_URL = "/alerting/list?search=datasource:Prometheus%20state:firing%20label:service=pipeline"
LINKS = [
    {"type": "dashboards", "title": "Pipeline dashboards", "tags": [TAG], "asDropdown": False,
     "includeVars": True, "keepTime": True, "targetBlank": False, "icon": "external link",
     "tooltip": "", "url": ""},
    {"type": "link", "title": "Firing alerts", "tags": [], "asDropdown": False,
     "includeVars": False, "keepTime": False, "targetBlank": False, "icon": "bolt",
     "tooltip": "The pipeline's alert rules (service=pipeline) that are firing",
     "url": FIRING_ALERTS_URL},
    {"type": "link", "title": "Alertmanager", "tags": [], "asDropdown": False,
     "includeVars": False, "keepTime": False, "targetBlank": False, "icon": "bolt",
     "tooltip": "Alert groups, silences and routing in Alertmanager",
     "url": "/alerting/groups?alertmanager=Alertmanager"},
]


def _place(panels: list[Panel], first_id: int, top: int) -> tuple[list[dict[str, Any]], int]:
    """Grid positions from ``top`` down; returns the placed panels and the next free line."""
    out: list[dict[str, Any]] = []
    x, y, line_height = 0, top, 0
    for offset, item in enumerate(panels):
        if x + item.width > 24:
            x, y, line_height = 0, y + line_height, 0
        out.append({"id": first_id + offset, "gridPos": {"h": item.height, "w": item.width, "x": x, "y": y},
                    **item.body})
        x, line_height = x + item.width, max(line_height, item.height)
    return out, y + line_height


def layout(rows: list[tuple[str, bool, list[Panel]]]) -> list[dict[str, Any]]:
    """Unique ids and grid positions; a collapsed row keeps its panels inside it, as Grafana does."""
    out: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for title, collapsed, panels in rows:
        header = {"type": "row", "title": title, "id": next_id, "collapsed": collapsed,
                  "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}
        placed, bottom = _place(panels, next_id + 1, y + 1)
        next_id += 1 + len(panels)
        out.append(header)
        if collapsed:
            header["panels"] = placed
            y += 1
        else:
            out.extend(placed)
            y = bottom
    return out


def variable(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A Prometheus ``label_values(...)`` variable; "All" means the regex ``.*``."""
    if "raw" in spec:
        return dict(spec["raw"])
    include_all = spec.get("include_all", True)
    return {"type": "query", "name": spec["name"], "label": spec.get("label", spec["name"]), "datasource": DS,
            "definition": spec["query"],
            "query": {"query": spec["query"], "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1},
            "current": {}, "hide": 0, "includeAll": include_all, "multi": spec.get("multi", True),
            "allValue": ".*" if include_all else None, "options": [], "refresh": 2,
            "regex": "", "skipUrlSync": False, "sort": 1}


def _common_variables(values: Values) -> list[dict[str, Any]]:
    datasource = {"type": "datasource", "name": "datasource", "label": "Data source",
                  "query": "prometheus", "current": {}, "hide": 0, "includeAll": False,
                  "multi": False, "options": [], "refresh": 1, "regex": "", "skipUrlSync": False}
    instance = variable({"name": "instance", "label": "Exporter instance",
                         "query": f"label_values(pipeline_exporter_build_info{{{values.config.selector}}}, instance)"})
    return [datasource, instance]


def _annotations() -> dict[str, Any]:
    """Grafana's own, and the time ranges in which the pipeline's alerts fired."""
    firing = 'ALERTS{service="pipeline", instance=~"$instance", alertstate="firing", severity!="none"}'
    return {"list": [
        {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
         "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
         "name": "Annotations & Alerts", "type": "dashboard"},
        {"name": "Firing alerts", "datasource": DS, "enable": True, "hide": False,
         "iconColor": "red", "expr": firing, "step": "60s", "titleFormat": "{{alertname}}",
         "textFormat": "{{severity}}: {{alertname}}", "useValueForTime": False}]}


def _shorthand(item: Any, origin: str) -> Any:
    """One panel with its ``metric:`` or ``period:`` shorthand written out (placeholders still open)."""
    if not isinstance(item, Mapping):
        return item
    if item.get("period"):
        return period_panel(item, origin)
    if item.get("metric") and not item.get("queries"):
        return {**item, "queries": [metric_query(item)]}
    return item


def _shorthands(declaration: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """The declaration with each shorthand panel's queries written out."""
    rows = [{**row, "panels": [_shorthand(item, origin) for item in row.get("panels") or []]}
            if isinstance(row, Mapping) else row for row in declaration.get("rows") or []]
    return {**declaration, "rows": rows}


def dashboard(declaration: Mapping[str, Any], values: Values, links: Links) -> dict[str, Any]:
    """A complete dashboard from one declaration whose placeholders are not yet filled."""
    origin = values.origin
    decl = values.fill(_shorthands(declaration, origin))
    uid = decl.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > UID_LIMIT:
        raise ConfigError(origin, "uid", f"must be a string of 1 to {UID_LIMIT} characters, got {uid!r}")
    rows = []
    for index, row in enumerate(decl.get("rows") or []):
        if not isinstance(row, Mapping) or "title" not in row:
            raise ConfigError(origin, f"rows[{index}]", "must be a mapping with a title and panels")
        rows.append((row["title"], bool(row.get("collapsed", False)),
                     [panel(item, links, origin) for item in row.get("panels") or []]))
    return {
        "uid": uid, "title": decl.get("title", uid), "description": decl.get("description", ""),
        "tags": [TAG, *decl.get("tags", ())], "id": None, "version": DASHBOARD_VERSION,
        "schemaVersion": SCHEMA_VERSION, "editable": False, "graphTooltip": 1,
        "fiscalYearStartMonth": 0, "liveNow": False, "timezone": values.config.timezone, "weekStart": "",
        "refresh": REFRESH, "time": {"from": decl.get("time_from", "now-24h"), "to": "now"},
        "timepicker": {"refresh_intervals": REFRESH_CHOICES},
        "links": [*LINKS, *decl.get("links", ())],
        "annotations": _annotations(),
        "templating": {"list": [*_common_variables(values), *(variable(v) for v in decl.get("variables", ()))]},
        "panels": layout(rows),
    }


def to_json(board: Mapping[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"
