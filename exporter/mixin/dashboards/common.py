"""Building blocks shared by every dashboard: datasource, selectors, panels, thresholds, layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

SCHEMA_VERSION = 39
# Bump when the dashboards change in a way users should notice (Grafana shows it in settings).
DASHBOARD_VERSION = 1
TAG = "pipeline"

# Every panel and every target points at the datasource variable, never at a fixed uid, so the
# dashboards work against any Prometheus a user picks (no __inputs, no ${DS_...} placeholders).
DS = {"type": "prometheus", "uid": "${datasource}"}

# Every selector carries the instance filter, so one Grafana can show several pipelines.
INSTANCE = 'instance=~"$instance"'

# Alert levels of the old dashboard and of the alert rules (alerts-and-dashboards.md).
BOUNCE_WARN, BOUNCE_CRIT = 0.05, 0.10
COMPLAINT_WARN, COMPLAINT_CRIT = 0.001, 0.005
SMS_FAILURE_WARN = 0.05
COVERAGE_ALERT, COVERAGE_TARGET = 0.70, 0.80
FORBIDDEN_PER_HOUR = 20
RATE_LIMITED_PER_15M = 10

# The funnel order of sites.status (pipeline-db.md); anything else is summed as "other".
FUNNEL = ["found", "scraped", "scored", "rescored", "proposal_ready", "contacted", "replied",
          "sold", "excluded"]

GREEN, YELLOW, ORANGE, RED, BLUE, TEXT = "green", "yellow", "orange", "red", "blue", "text"


def sel(metric: str, *matchers: str) -> str:
    """``metric{instance=~"$instance", ...}``: the one way a dashboard selects a series."""
    return metric + "{" + ", ".join((INSTANCE, *matchers)) + "}"


def or_zero(expr: str) -> str:
    """Show 0 instead of "No data" when no series match (``on()`` keeps real series' labels)."""
    return f"({expr}) or on() vector(0)"


# --- targets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = "__auto"
    instant: bool = False
    table: bool = False
    interval: str = ""

    def to_json(self, ref_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "datasource": DS,
            "refId": ref_id,
            "expr": self.expr,
            "legendFormat": self.legend,
            "range": not self.instant,
            "instant": self.instant,
            "format": "table" if self.table else "time_series",
            "editorMode": "code",
        }
        if self.interval:
            out["interval"] = self.interval
        return out


def t(expr: str, legend: str = "__auto", **kwargs: Any) -> Target:
    """A range query (time series panels)."""
    return Target(expr, legend, **kwargs)


def i(expr: str, legend: str = "__auto", **kwargs: Any) -> Target:
    """An instant query (stats, gauges, bar gauges, pies)."""
    return Target(expr, legend, instant=True, **kwargs)


def tbl(expr: str) -> Target:
    """An instant query in table format (table panels, merged on their labels)."""
    return Target(expr, "", instant=True, table=True)


# --- thresholds, mappings, overrides ------------------------------------------------------

def steps(base: str, *levels: tuple[float, str]) -> dict[str, Any]:
    """Absolute thresholds: ``steps(GREEN, (0.05, ORANGE), (0.10, RED))``."""
    return {"mode": "absolute",
            "steps": [{"color": base, "value": None}]
            + [{"color": color, "value": value} for value, color in levels]}


def value_map(mapping: dict[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """Map exact values to text and colour: ``{0: ("OK", GREEN), 1: ("FAILED", RED)}``."""
    options = {str(value): {"text": text, "color": color, "index": n}
               for n, (value, (text, color)) in enumerate(sorted(mapping.items()))}
    return [{"type": "value", "options": options}]


def override(column: str, **properties: Any) -> dict[str, Any]:
    """A field override matched by display name (table columns, series)."""
    return {"matcher": {"id": "byName", "options": column},
            "properties": [{"id": key.replace("__", "."), "value": value}
                           for key, value in properties.items()]}


# --- panels --------------------------------------------------------------------------------

@dataclass
class Panel:
    """A Grafana panel before layout: size and everything but id and position."""

    body: dict[str, Any]
    w: int
    h: int


def _panel(kind: str, title: str, description: str, targets: Iterable[Target], unit: str,
           w: int, h: int, *, thresholds: dict[str, Any] | None = None,
           mappings: list[dict[str, Any]] | None = None, minimum: float | None = None,
           maximum: float | None = None, decimals: int | None = None,
           custom: dict[str, Any] | None = None, color: dict[str, Any] | None = None,
           overrides: list[dict[str, Any]] | None = None,
           options: dict[str, Any] | None = None, links: list[dict[str, Any]] | None = None,
           transformations: list[dict[str, Any]] | None = None,
           interval: str | None = None) -> Panel:
    defaults: dict[str, Any] = {"unit": unit,
                                "thresholds": thresholds or steps(GREEN),
                                "mappings": mappings or [],
                                "color": color or {"mode": "thresholds"}}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if decimals is not None:
        defaults["decimals"] = decimals
    if custom:
        defaults["custom"] = custom
    refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    body: dict[str, Any] = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target.to_json(refs[n]) for n, target in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if links:
        body["links"] = links
    if transformations:
        body["transformations"] = transformations
    if interval:
        body["interval"] = interval
    return Panel(body, w, h)


def _reduce(calcs: str = "lastNotNull", fields: str = "") -> dict[str, Any]:
    return {"calcs": [calcs], "fields": fields, "values": False}


def stat(title: str, description: str, targets: Iterable[Target], unit: str = "short", *,
         w: int = 4, h: int = 4, color_mode: str = "value", graph: bool = False,
         fields: str = "", text_mode: str = "auto", **kw: Any) -> Panel:
    """A single big number (the old page's metric cards)."""
    options = {"reduceOptions": _reduce(fields=fields), "colorMode": color_mode,
               "graphMode": "area" if graph else "none", "justifyMode": "auto",
               "orientation": "auto", "textMode": text_mode, "wideLayout": True,
               "showPercentChange": False}
    return _panel("stat", title, description, targets, unit, w, h, options=options, **kw)


def gauge(title: str, description: str, targets: Iterable[Target], unit: str, *,
          w: int = 6, h: int = 6, **kw: Any) -> Panel:
    """A dial with its thresholds drawn as coloured bands (coverage, host usage)."""
    options = {"reduceOptions": _reduce(), "orientation": "auto", "showThresholdLabels": False,
               "showThresholdMarkers": True, "minVizHeight": 75, "minVizWidth": 75,
               "sizing": "auto"}
    return _panel("gauge", title, description, targets, unit, w, h, options=options, **kw)


def bargauge(title: str, description: str, targets: Iterable[Target], unit: str = "short", *,
             w: int = 12, h: int = 8, **kw: Any) -> Panel:
    """Horizontal bars, one per series, in query order (funnels, per-channel rates)."""
    options = {"reduceOptions": _reduce(), "orientation": "horizontal",
               "displayMode": "gradient", "valueMode": "color", "namePlacement": "auto",
               "showUnfilled": True, "sizing": "auto", "minVizHeight": 16, "minVizWidth": 8,
               "maxVizHeight": 300}
    return _panel("bargauge", title, description, targets, unit, w, h, **kw, options=options)


def piechart(title: str, description: str, targets: Iterable[Target], unit: str = "short", *,
             w: int = 8, h: int = 8, **kw: Any) -> Panel:
    """A donut with a legend table of values and percentages (distributions)."""
    options = {"reduceOptions": _reduce(), "pieType": "donut",
               "legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                          "values": ["value", "percent"]},
               "tooltip": {"mode": "single", "sort": "none"}}
    return _panel("piechart", title, description, targets, unit, w, h, options=options,
                  color={"mode": "palette-classic"}, **kw)


def timeseries(title: str, description: str, targets: Iterable[Target], unit: str, *,
               w: int = 12, h: int = 8, bars: bool = False, stack: bool = False,
               threshold_lines: bool = False, **kw: Any) -> Panel:
    """Lines (or bars) over time; ``threshold_lines`` draws the alert levels as dashed lines."""
    custom = {"drawStyle": "bars" if bars else "line", "lineWidth": 1,
              "fillOpacity": 60 if bars else 10, "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"},
              "axisPlacement": "auto", "axisSoftMin": 0, "lineInterpolation": "linear",
              "thresholdsStyle": {"mode": "dashed" if threshold_lines else "off"}}
    options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True,
                          "calcs": []},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return _panel("timeseries", title, description, targets, unit, w, h, custom=custom,
                  color={"mode": "palette-classic"}, options=options, **kw)


def table(title: str, description: str, targets: Iterable[Target], unit: str = "short", *,
          w: int = 24, h: int = 8, rename: dict[str, str], hide: Iterable[str] = (),
          sort_by: str | None = None, **kw: Any) -> Panel:
    """Instant queries merged into one row per label set; ``rename`` orders the columns."""
    hidden = ["Time", "__name__", "job", *hide]
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": {name: True for name in hidden},
            "indexByName": {name: n for n, name in enumerate(rename)},
            "renameByName": rename}},
    ]
    options: dict[str, Any] = {"showHeader": True, "cellHeight": "sm",
                               "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return _panel("table", title, description, targets, unit, w, h,
                  custom={"align": "auto", "cellOptions": {"type": "auto"},
                          "inspect": False},
                  transformations=transformations, options=options, **kw)


def text(title: str, description: str, markdown: str, *, w: int = 12, h: int = 8) -> Panel:
    """Markdown: the old page's recommendations and checklists, next to what they explain.

    It carries the datasource and a unit like every other panel so that one lint rule fits all.
    """
    body = {"type": "text", "title": title, "description": description, "datasource": DS,
            "targets": [], "fieldConfig": {"defaults": {"unit": "none"}, "overrides": []},
            "options": {"mode": "markdown", "content": markdown.strip() + "\n",
                        "code": {"language": "plaintext", "showLineNumbers": False,
                                 "showMiniMap": False}}}
    return Panel(body, w, h)


# --- layout --------------------------------------------------------------------------------

@dataclass
class Row:
    """A titled section of the old page; its panels flow left to right, 24 columns wide."""

    title: str
    panels: list[Panel] = field(default_factory=list)


def layout(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Give every panel a unique id and a grid position, rows in order."""
    out: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in rows:
        out.append({"type": "row", "title": row.title, "id": next_id, "collapsed": False,
                    "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        next_id, y = next_id + 1, y + 1
        x, line_height = 0, 0
        for panel in row.panels:
            if x + panel.w > 24:
                x, y, line_height = 0, y + line_height, 0
            out.append({"id": next_id, "gridPos": {"h": panel.h, "w": panel.w, "x": x, "y": y},
                        **panel.body})
            next_id, x, line_height = next_id + 1, x + panel.w, max(line_height, panel.h)
        y += line_height
    return out


# --- variables, links, the dashboard ------------------------------------------------------

def datasource_variable() -> dict[str, Any]:
    return {"type": "datasource", "name": "datasource", "label": "Data source",
            "query": "prometheus", "current": {}, "hide": 0, "includeAll": False,
            "multi": False, "options": [], "refresh": 1, "regex": "", "skipUrlSync": False}


def query_variable(name: str, label: str, definition: str, *, include_all: bool = True,
                   multi: bool = True) -> dict[str, Any]:
    """A Prometheus ``label_values(...)`` variable; "All" means the regex ``.*``."""
    return {"type": "query", "name": name, "label": label, "datasource": DS,
            "definition": definition,
            "query": {"query": definition, "refId": "PrometheusVariableQueryEditor-VariableQuery",
                      "qryType": 1},
            "current": {}, "hide": 0, "includeAll": include_all, "multi": multi,
            "allValue": ".*" if include_all else None, "options": [], "refresh": 2,
            "regex": "", "skipUrlSync": False, "sort": 1}


def instance_variable() -> dict[str, Any]:
    return query_variable("instance", "Exporter instance",
                          "label_values(pipeline_exporter_build_info, instance)")


# Grafana's own alerting pages list the rules of the Prometheus datasource and the alerts held by
# the Alertmanager datasource (both provisioned with these names in grafana/provisioning/).
LINKS = [
    {"type": "dashboards", "title": "Pipeline dashboards", "tags": [TAG], "asDropdown": False,
     "includeVars": True, "keepTime": True, "targetBlank": False, "icon": "external link",
     "tooltip": "", "url": ""},
    {"type": "link", "title": "Firing alerts", "tags": [], "asDropdown": False,
     "includeVars": False, "keepTime": False, "targetBlank": False, "icon": "bolt",
     "tooltip": "Alert rules of the Prometheus datasource that are firing",
     "url": "/alerting/list?search=datasource:Prometheus%20state:firing"},
    {"type": "link", "title": "Alertmanager", "tags": [], "asDropdown": False,
     "includeVars": False, "keepTime": False, "targetBlank": False, "icon": "bolt",
     "tooltip": "Alert groups, silences and routing in Alertmanager",
     "url": "/alerting/groups?alertmanager=Alertmanager"},
]

FIRING_ALERTS_LINK = [{"title": "Firing alerts", "url": LINKS[1]["url"], "targetBlank": False}]


def firing_alerts_annotation() -> dict[str, Any]:
    """Mark the time ranges in which the pipeline's alerts fired on every time series panel."""
    return {"name": "Firing alerts", "datasource": DS, "enable": True, "hide": False,
            "iconColor": "red", "expr": sel("ALERTS", 'alertstate="firing"'),
            "step": "60s", "titleFormat": "{{alertname}}",
            "textFormat": "{{severity}}: {{alertname}}", "useValueForTime": False}


def dashboard(uid: str, title: str, description: str, rows: Iterable[Row], *,
              extra_tags: Iterable[str] = (), variables: Iterable[dict[str, Any]] = (),
              time_from: str = "now-24h") -> dict[str, Any]:
    """A complete dashboard in Grafana's classic JSON model."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [TAG, *extra_tags],
        "id": None,
        "version": DASHBOARD_VERSION,
        "schemaVersion": SCHEMA_VERSION,
        "editable": False,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "timezone": "browser",
        "weekStart": "",
        "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m", "10m"]},
        "links": LINKS,
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
             "name": "Annotations & Alerts", "type": "dashboard"},
            firing_alerts_annotation(),
        ]},
        "templating": {"list": [datasource_variable(), instance_variable(), *variables]},
        "panels": layout(rows),
    }


# --- panels that appear on more than one page --------------------------------------------

def funnel(*, w: int = 12, h: int = 9) -> Panel:
    """Sites per status, one query per status so the bars keep the funnel order."""
    targets = [i(or_zero("sum(" + sel("pipeline_sites", f'status="{status}"') + ")"),
                 status) for status in FUNNEL]
    others = "|".join(FUNNEL)
    targets.append(i(or_zero("sum(" + sel("pipeline_sites", f'status!~"{others}"') + ")"),
                     "other"))
    return bargauge(
        "Pipeline funnel", "Sites currently at each pipeline status, in funnel order (found → sold; "
        "excluded = dropped on purpose; other = status values outside the funnel).",
        targets, "short", w=w, h=h, thresholds=steps(BLUE))


def response_rate_by_channel(*, w: int = 12, h: int = 8) -> Panel:
    """Replies / sent per channel over the whole history (recording rule, instant values)."""
    return bargauge(
        "Response rate by channel", "Outreach messages with a reply divided by messages sent, per "
        "channel, over the whole history (recording rule "
        "channel:pipeline_outreach_replied_per_sent:ratio). Which channel gets the best response?",
        [i(sel("channel:pipeline_outreach_replied_per_sent:ratio"), "{{channel}}")],
        "percentunit", w=w, h=h, minimum=0, decimals=1, thresholds=steps(BLUE))


def firing_alerts_stat(*, w: int = 4, h: int = 4) -> Panel:
    return stat(
        "Firing alerts", "Pipeline alerts firing now (Prometheus ALERTS series). Click through to "
        "the alert list for details and runbooks.",
        [i(or_zero("count(" + sel("ALERTS", 'alertstate="firing"') + ")"))],
        "short", w=w, h=h, thresholds=steps(GREEN, (1, RED)), color_mode="background",
        links=FIRING_ALERTS_LINK)


def total(metric: str, *matchers: str, by: str = "") -> str:
    """``sum [by (labels)] (metric{instance=~"$instance", ...})``."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({sel(metric, *matchers)})"


def barchart(title: str, description: str, target: Target, unit: str = "short", *,
             row_label: str, column_label: str, columns: list[str], w: int = 12,
             h: int = 8, **kw: Any) -> Panel:
    """Grouped bars: one group per ``row_label`` value, one bar per ``column_label`` value.

    One table query is pivoted with groupingToMatrix, so a missing combination leaves a gap
    instead of an empty query; ``columns`` fixes the bar order.
    """
    corner = f"{row_label}\\{column_label}"
    transformations = [
        {"id": "groupingToMatrix", "options": {"columnField": column_label,
                                               "rowField": row_label, "valueField": "Value",
                                               "emptyValue": "zero"}},
        {"id": "organize", "options": {
            "excludeByName": {},
            "indexByName": {name: n for n, name in enumerate([corner, *columns])},
            "renameByName": {corner: row_label}}},
    ]
    options = {"orientation": "horizontal", "groupWidth": 0.8, "barWidth": 0.9,
               "showValue": "auto", "stacking": "none", "xTickLabelRotation": 0,
               "xTickLabelSpacing": 0,
               "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True,
                          "calcs": []},
               "tooltip": {"mode": "multi", "sort": "none"}}
    return _panel("barchart", title, description, [target], unit, w, h,
                  color={"mode": "palette-classic"}, options=options,
                  custom={"fillOpacity": 80, "gradientMode": "none", "lineWidth": 1,
                          "axisPlacement": "auto", "axisSoftMin": 0},
                  transformations=transformations, **kw)
