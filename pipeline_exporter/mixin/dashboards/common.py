"""Building blocks shared by every dashboard: selectors, queries, panels, thresholds, layout."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline_exporter.mixin.config import MixinConfig
from pipeline_exporter.mixin.promql import Selectors, or_zero

SCHEMA_VERSION = 39
# Bump when the dashboards change in a way users should notice (Grafana shows it in settings).
DASHBOARD_VERSION = 2
TAG = "pipeline"
# The old page's auto-refresh choices; 1 m by default (the exporter's queries run every minute).
REFRESH = "1m"
REFRESH_CHOICES = ["30s", "1m", "5m", "10m"]
# Per-period panels: Prometheus returns at most 11,000 points per series; with this many data
# points allowed, Grafana's step is the panel's interval (the period) for any usual range.
MAX_DATA_POINTS = 11000

# Every panel and every target points at the datasource variable, never at a fixed uid, so the
# dashboards work against any Prometheus a user picks (no __inputs, no ${DS_...} placeholders).
DS = {"type": "prometheus", "uid": "${datasource}"}
INSTANCE = 'instance=~"$instance"'

# The funnel order of sites.status (pipeline-db.md); anything else is summed as "other".
FUNNEL = ["found", "scraped", "scored", "rescored", "proposal_ready", "contacted", "replied",
          "sold", "excluded"]

GREEN, YELLOW, ORANGE, RED, BLUE, TEXT = "green", "yellow", "orange", "red", "blue", "text"


@dataclass(frozen=True)
class Context:
    """What every panel builder needs from the config: selectors, levels and URLs."""

    config: MixinConfig

    @property
    def series(self) -> Selectors:
        return Selectors((self.config.selector, INSTANCE))

    def sel(self, metric: str, *matchers: str) -> str:
        """``metric{job="pipeline-exporter", instance=~"$instance", ...}``."""
        return self.series.of(metric, *matchers)

    def total(self, metric: str, *matchers: str, by: str = "") -> str:
        """``sum [by (labels)] (metric{job=..., instance=~"$instance", ...})``."""
        grouping = f" by ({by})" if by else ""
        return f"sum{grouping} ({self.sel(metric, *matchers)})"

    def alerts(self, *matchers: str) -> str:
        """The pipeline's alerts (service="pipeline") on the selected exporters."""
        return "ALERTS{" + ", ".join(('service="pipeline"', INSTANCE, *matchers)) + "}"

    def runbook_links(self, *alert_names: str) -> list[dict[str, Any]]:
        """Panel links to the runbook sections of the alerts a panel goes with."""
        return [{"title": f"Runbook: {name}", "url": self.config.runbook(name), "targetBlank": True}
                for name in alert_names]

    def dashboard_link(self, uid: str, title: str) -> list[dict[str, Any]]:
        """A panel link to another pipeline dashboard, keeping the time range and variables."""
        return [{"title": title, "url": f"/d/{uid}?${{__url_time_range}}&${{__all_variables}}",
                 "targetBlank": False}]


# --- targets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One PromQL query of a panel."""

    expr: str
    legend: str = "__auto"
    instant: bool = False
    table: bool = False

    def to_json(self, ref_id: str) -> dict[str, Any]:
        return {
            "datasource": DS,
            "refId": ref_id,
            "expr": self.expr,
            "legendFormat": self.legend,
            "range": not self.instant,
            "instant": self.instant,
            "format": "table" if self.table else "time_series",
            "editorMode": "code",
        }


def over_time(expr: str, legend: str = "__auto") -> Target:
    """A range query (time series and state timeline panels)."""
    return Target(expr, legend)


def now(expr: str, legend: str = "__auto") -> Target:
    """An instant query (stats, gauges, bar gauges, pies)."""
    return Target(expr, legend, instant=True)


def table_query(expr: str) -> Target:
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
    options = {str(value): {"text": text, "color": color, "index": index}
               for index, (value, (text, color)) in enumerate(sorted(mapping.items()))}
    return [{"type": "value", "options": options}]


def override(column: str, **properties: Any) -> dict[str, Any]:
    """A field override matched by display name (table columns, series)."""
    return {"matcher": {"id": "byName", "options": column},
            "properties": [{"id": key.replace("__", "."), "value": value}
                           for key, value in properties.items()]}


def fixed_colour(name: str, colour: str) -> dict[str, Any]:
    """A series or column always drawn in one colour (passed green, failed red, ...)."""
    return override(name, color={"mode": "fixed", "fixedColor": colour})


# --- panels --------------------------------------------------------------------------------

@dataclass
class Panel:
    """A Grafana panel before layout: size and everything but id and position."""

    body: dict[str, Any]
    width: int
    height: int


def _panel(kind: str, title: str, description: str, targets: Iterable[Target], unit: str,
           width: int, height: int, *, thresholds: dict[str, Any] | None = None,
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
        "targets": [target.to_json(refs[index]) for index, target in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }
    if links:
        body["links"] = links
    if transformations:
        body["transformations"] = transformations
    if interval:
        # The step of every query is the period itself: one bar per period, each event in one bar.
        body["interval"] = interval
        body["maxDataPoints"] = MAX_DATA_POINTS
    return Panel(body, width, height)


def _reduce(calcs: str = "lastNotNull", fields: str = "") -> dict[str, Any]:
    return {"calcs": [calcs], "fields": fields, "values": False}


def stat(title: str, description: str, targets: Iterable[Target], unit: str = "short", *,
         width: int = 4, height: int = 4, color_mode: str = "value", graph: bool = False,
         fields: str = "", text_mode: str = "auto", **kw: Any) -> Panel:
    """A single big number (the old page's metric cards)."""
    options = {"reduceOptions": _reduce(fields=fields), "colorMode": color_mode,
               "graphMode": "area" if graph else "none", "justifyMode": "auto",
               "orientation": "auto", "textMode": text_mode, "wideLayout": True,
               "showPercentChange": False}
    return _panel("stat", title, description, targets, unit, width, height, options=options, **kw)


def gauge(title: str, description: str, targets: Iterable[Target], unit: str, *,
          width: int = 6, height: int = 6, **kw: Any) -> Panel:
    """A dial with its thresholds drawn as coloured bands (coverage, host usage)."""
    options = {"reduceOptions": _reduce(), "orientation": "auto", "showThresholdLabels": False,
               "showThresholdMarkers": True, "minVizHeight": 75, "minVizWidth": 75,
               "sizing": "auto"}
    return _panel("gauge", title, description, targets, unit, width, height, options=options, **kw)


def bargauge(title: str, description: str, targets: Iterable[Target], unit: str = "short", *,
             width: int = 12, height: int = 8, **kw: Any) -> Panel:
    """Horizontal bars, one per series, in query order (funnels, per-channel rates)."""
    options = {"reduceOptions": _reduce(), "orientation": "horizontal",
               "displayMode": "gradient", "valueMode": "color", "namePlacement": "auto",
               "showUnfilled": True, "sizing": "auto", "minVizHeight": 16, "minVizWidth": 8,
               "maxVizHeight": 300}
    return _panel("bargauge", title, description, targets, unit, width, height, **kw, options=options)


def piechart(title: str, description: str, targets: Iterable[Target], unit: str = "short", *,
             width: int = 8, height: int = 8, **kw: Any) -> Panel:
    """A donut with a legend table of values and percentages (distributions)."""
    options = {"reduceOptions": _reduce(), "pieType": "donut",
               "legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                          "values": ["value", "percent"]},
               "tooltip": {"mode": "single", "sort": "none"}}
    return _panel("piechart", title, description, targets, unit, width, height, options=options,
                  color={"mode": "palette-classic"}, **kw)


def timeseries(title: str, description: str, targets: Iterable[Target], unit: str, *,
               width: int = 12, height: int = 8, bars: bool = False, stack: bool = False,
               threshold_lines: bool = False, **kw: Any) -> Panel:
    """Lines (or bars) over time; ``threshold_lines`` draws the alert levels as dashed lines."""
    custom = {"drawStyle": "bars" if bars else "line", "lineWidth": 1,
              "fillOpacity": 60 if bars else 10, "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stack else "none", "group": "A"},
              "axisPlacement": "auto", "axisSoftMin": 0, "lineInterpolation": "linear",
              "thresholdsStyle": {"mode": "dashed" if threshold_lines else "off"}}
    if bars:
        # A bar stands for the period that ENDS at its timestamp: draw it before that moment.
        custom["barAlignment"] = -1
    options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True,
                          "calcs": []},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return _panel("timeseries", title, description, targets, unit, width, height, custom=custom,
                  color={"mode": "palette-classic"}, options=options, **kw)


def state_timeline(title: str, description: str, targets: Iterable[Target], *,
                   mappings: list[dict[str, Any]], width: int = 24, height: int = 8,
                   **kw: Any) -> Panel:
    """One coloured band per series over time (cron job results, query health)."""
    options = {"mergeValues": True, "showValue": "never", "alignValue": "left", "rowHeight": 0.8,
               "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
               "tooltip": {"mode": "single", "sort": "none"}}
    return _panel("state-timeline", title, description, targets, "none", width, height,
                  mappings=mappings, options=options,
                  custom={"fillOpacity": 80, "lineWidth": 0}, **kw)


def table(title: str, description: str, targets: Iterable[Target], unit: str = "short", *,
          width: int = 24, height: int = 8, rename: dict[str, str], hide: Iterable[str] = (),
          sort_by: str | None = None, **kw: Any) -> Panel:
    """Instant queries merged into one row per label set; ``rename`` orders the columns."""
    hidden = ["Time", "__name__", "job", *hide]
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": {name: True for name in hidden},
            "indexByName": {name: index for index, name in enumerate(rename)},
            "renameByName": rename}},
    ]
    options: dict[str, Any] = {"showHeader": True, "cellHeight": "sm",
                               "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    if sort_by:
        options["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return _panel("table", title, description, targets, unit, width, height,
                  custom={"align": "auto", "cellOptions": {"type": "auto"},
                          "inspect": False},
                  transformations=transformations, options=options, **kw)


def text(title: str, description: str, markdown: str, *, width: int = 12, height: int = 8) -> Panel:
    """Markdown: the old page's recommendations and checklists, next to what they explain.

    It carries the datasource and a unit like every other panel so that one lint rule fits all.
    """
    body = {"type": "text", "title": title, "description": description, "datasource": DS,
            "targets": [], "fieldConfig": {"defaults": {"unit": "none"}, "overrides": []},
            "options": {"mode": "markdown", "content": markdown.strip() + "\n",
                        "code": {"language": "plaintext", "showLineNumbers": False,
                                 "showMiniMap": False}}}
    return Panel(body, width, height)


def barchart(title: str, description: str, target: Target, unit: str = "short", *,
             row_label: str, column_label: str, columns: list[str], width: int = 12,
             height: int = 8, stacking: str = "none", **kw: Any) -> Panel:
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
            "indexByName": {name: index for index, name in enumerate([corner, *columns])},
            "renameByName": {corner: row_label}}},
    ]
    options = {"orientation": "horizontal", "groupWidth": 0.8, "barWidth": 0.9,
               "showValue": "auto", "stacking": stacking, "xTickLabelRotation": 0,
               "xTickLabelSpacing": 0,
               "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True,
                          "calcs": []},
               "tooltip": {"mode": "multi", "sort": "none"}}
    return _panel("barchart", title, description, [target], unit, width, height,
                  color={"mode": "palette-classic"}, options=options,
                  custom={"fillOpacity": 80, "gradientMode": "none", "lineWidth": 1,
                          "axisPlacement": "auto", "axisSoftMin": 0},
                  transformations=transformations, **kw)


# --- per-period panels ------------------------------------------------------------------------

PERIOD_WORDS = {"15m": "per 15 minutes", "1h": "per hour", "24h": "per day", "7d": "per week"}
PERIOD_INTERVALS = {"15m": "15m", "1h": "1h", "24h": "1d", "7d": "7d"}


def per_period(ctx: Context, title: str, description: str, metric: str, span: str, *,
               matchers: Iterable[str] = (), by: str, legend: str, unit: str = "short",
               width: int = 12, height: int = 8, stack: bool = True, **kw: Any) -> Panel:
    """Bars of a windowed gauge sampled once per period: each bar is what SQL counts in it.

    ``metric{window=span}`` at the end of each period holds the rows whose own timestamp falls in
    that period; the panel's interval is the period, so no event is in two bars, and a prune or
    a restart of anything changes no bar.
    """
    expr = ctx.total(metric, *matchers, f'window="{span}"', by=by)
    return timeseries(f"{title} {PERIOD_WORDS[span]}",
                      f"{description} Each bar is {metric}{{window=\"{span}\"}} at the end of its "
                      f"period: what a SQL count of that period says (one bar {PERIOD_WORDS[span]}).",
                      [over_time(expr, legend)], unit, width=width, height=height, bars=True,
                      stack=stack, interval=PERIOD_INTERVALS[span], **kw)


def last_period(ctx: Context, title: str, description: str, metric: str, span: str, *,
                matchers: Iterable[str] = (), unit: str = "short", **kw: Any) -> Panel:
    """A stat of a windowed gauge: the rows of the last ``span``, now."""
    return stat(f"{title}, last {span}", f"{description} From {metric}{{window=\"{span}\"}}: the "
                "rows whose own timestamp is in the window, right from the exporter's first run.",
                [now(or_zero(ctx.total(metric, *matchers, f'window="{span}"')))], unit, **kw)


# --- layout --------------------------------------------------------------------------------

@dataclass
class Row:
    """A titled section of the old page; its panels flow left to right, 24 columns wide."""

    title: str
    panels: list[Panel] = field(default_factory=list)
    collapsed: bool = False


def _place(panels: list[Panel], first_id: int, top: int) -> tuple[list[dict[str, Any]], int]:
    """Grid positions from ``top`` down; returns the placed panels and the next free line."""
    out: list[dict[str, Any]] = []
    x, y, line_height = 0, top, 0
    for offset, panel in enumerate(panels):
        if x + panel.width > 24:
            x, y, line_height = 0, y + line_height, 0
        out.append({"id": first_id + offset,
                    "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y}, **panel.body})
        x, line_height = x + panel.width, max(line_height, panel.height)
    return out, y + line_height


def layout(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """Unique ids and grid positions; a collapsed row keeps its panels inside it, as Grafana does."""
    out: list[dict[str, Any]] = []
    next_id, y = 1, 0
    for row in rows:
        header = {"type": "row", "title": row.title, "id": next_id, "collapsed": row.collapsed,
                  "panels": [], "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}
        placed, bottom = _place(row.panels, next_id + 1, y + 1)
        next_id += 1 + len(row.panels)
        out.append(header)
        if row.collapsed:
            header["panels"] = placed
            y += 1
        else:
            out.extend(placed)
            y = bottom
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


def instance_variable(ctx: Context) -> dict[str, Any]:
    return query_variable("instance", "Exporter instance",
                          f"label_values(pipeline_exporter_build_info{{{ctx.config.selector}}}, instance)")


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

FIRING_ALERTS_LINK = [{"title": "Firing alerts", "url": FIRING_ALERTS_URL, "targetBlank": False}]


def firing_alerts_annotation(ctx: Context) -> dict[str, Any]:
    """Mark the time ranges in which the pipeline's alerts fired on every time series panel."""
    return {"name": "Firing alerts", "datasource": DS, "enable": True, "hide": False,
            "iconColor": "red", "expr": ctx.alerts('alertstate="firing"', 'severity!="none"'),
            "step": "60s", "titleFormat": "{{alertname}}",
            "textFormat": "{{severity}}: {{alertname}}", "useValueForTime": False}


def dashboard(ctx: Context, uid: str, title: str, description: str, rows: Iterable[Row], *,
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
        "refresh": REFRESH,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {"refresh_intervals": REFRESH_CHOICES},
        "links": LINKS,
        "annotations": {"list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
             "name": "Annotations & Alerts", "type": "dashboard"},
            firing_alerts_annotation(ctx),
        ]},
        "templating": {"list": [datasource_variable(), instance_variable(ctx), *variables]},
        "panels": layout(rows),
    }


# --- panels that appear on more than one page --------------------------------------------

def funnel(ctx: Context, *, width: int = 12, height: int = 9) -> Panel:
    """Sites per status, one query per status so the bars keep the funnel order."""
    targets = [now(or_zero(ctx.total("pipeline_sites", f'status="{status}"')), status)
               for status in FUNNEL]
    others = "|".join(FUNNEL)
    targets.append(now(or_zero(ctx.total("pipeline_sites", f'status!~"{others}"')), "other"))
    return bargauge(
        "Pipeline funnel", "Sites currently at each pipeline status, in funnel order (found → sold; "
        "excluded = dropped on purpose; other = status values outside the funnel).",
        targets, "short", width=width, height=height, thresholds=steps(BLUE))


def response_rate_by_channel(ctx: Context, *, width: int = 12, height: int = 8) -> Panel:
    """Replies / sent per channel over every row counted (recording rule, instant values)."""
    return bargauge(
        "Response rate by channel (all time)", "Outreach messages with a reply divided by "
        "messages sent, per channel, over every row the exporter has counted (recording rule "
        "channel:pipeline_outreach_replied_per_sent:ratio). Which channel gets the best response?",
        [now(ctx.sel("channel:pipeline_outreach_replied_per_sent:ratio"), "{{channel}}")],
        "percentunit", width=width, height=height, minimum=0, decimals=1, thresholds=steps(BLUE))


def firing_alerts_stat(ctx: Context, *, width: int = 4, height: int = 4) -> Panel:
    return stat(
        "Firing alerts", "Pipeline alerts (service=pipeline) firing now, the dead man's switch "
        "heartbeat (severity none) left out (Prometheus ALERTS series). Click through to the "
        "alert list for details and runbooks.",
        [now(or_zero("count(" + ctx.alerts('alertstate="firing"', 'severity!="none"') + ")"))],
        "short", width=width, height=height, thresholds=steps(GREEN, (1, RED)),
        color_mode="background", links=FIRING_ALERTS_LINK)
