"""Panel declarations to Grafana panel JSON: one function per kind, then the ``grafana:`` patch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_exporter.errors import ConfigError

# Every panel and target points at the datasource variable, never at a fixed uid, so the
# dashboards work against any Prometheus a user picks (no __inputs, no ${DS_...} placeholders).
DS = {"type": "prometheus", "uid": "${datasource}"}
# Per-period panels: Prometheus returns at most 11,000 points per series; with this many data
# points allowed, Grafana's step is the panel's interval (the period) for any usual range.
MAX_DATA_POINTS = 11000
REFS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Calendar-period bars (``period:``): the period, Grafana's rounding unit, and the panel's own range
# by default (the period so far plus this much before it).
PERIODS = {"1d": ("d", "7d"), "1h": ("h", "24h")}
RANGE_KINDS = ("timeseries", "state-timeline")
SIZES = {"stat": (4, 4), "gauge": (6, 6), "bargauge": (12, 8), "piechart": (8, 8), "timeseries": (12, 8),
         "state-timeline": (24, 8), "table": (24, 8), "text": (12, 8), "barchart": (12, 8)}
KINDS = tuple(SIZES)
# Kinds that colour a value: no value (the target down, the series stale, NaN) reads UNKNOWN in
# grey unless the panel says ``unknown: false``; never the base colour of a healthy value.
UNKNOWN_KINDS = ("stat", "gauge", "bargauge")
UNKNOWN = "UNKNOWN"
# Kinds that draw series or rows: Grafana shows this text instead of an empty, calm-looking panel.
NO_DATA_KINDS = ("timeseries", "state-timeline", "barchart", "piechart")
NO_DATA = "No data — exporter not scraped?"
PANEL_MARK = "\x00panel\x00"


@dataclass
class Panel:
    """A Grafana panel before layout: size and everything but id and position."""

    body: dict[str, Any]
    width: int
    height: int


@dataclass(frozen=True)
class Links:
    """How panel link shorthands become URLs: the runbook page and the config's runbook base."""

    runbook: Callable[[str], str]

    def expand(self, link: Mapping[str, Any]) -> dict[str, Any]:
        if "runbook" in link:
            return {"title": link.get("title", f"Runbook: {link['runbook']}"), "url": self.runbook(link["runbook"]),
                    "targetBlank": link.get("targetBlank", True)}
        if "dashboard" in link and "panel" in link:
            # The panel's id is known once its dashboard is laid out: resolve_panel_links fills it in.
            return {"title": link["title"],
                    "url": f"/d/{link['dashboard']}?viewPanel={PANEL_MARK}{link['panel']}{PANEL_MARK}"
                           "&${__url_time_range}&${__all_variables}",
                    "targetBlank": link.get("targetBlank", False)}
        if "dashboard" in link:
            return {"title": link["title"],
                    "url": f"/d/{link['dashboard']}?${{__url_time_range}}&${{__all_variables}}",
                    "targetBlank": link.get("targetBlank", False)}
        return dict(link)


def steps(spec: list[Any]) -> dict[str, Any]:
    """``[green, [0.05, orange]]`` -> Grafana's absolute thresholds."""
    base, *levels = spec
    return {"mode": "absolute", "steps": [{"color": base, "value": None}]
            + [{"color": colour, "value": value} for value, colour in levels]}


def value_map(spec: Mapping[Any, list[str]]) -> list[dict[str, Any]]:
    """``{0: [OK, green]}`` -> a value mapping (text and colour per exact value)."""
    ordered = sorted(spec.items(), key=lambda item: float(item[0]))
    options = {str(value): {"text": text, "color": colour, "index": index}
               for index, (value, (text, colour)) in enumerate(ordered)}
    return [{"type": "value", "options": options}]


def unknown_map(index: int) -> dict[str, Any]:
    """No value (null or NaN: the target down, the series stale) -> UNKNOWN in grey, never a healthy zero."""
    return {"type": "special", "options": {"match": "null+nan",
                                           "result": {"text": UNKNOWN, "color": "grey", "index": index}}}


def shows_unknown(kind: str, decl: Mapping[str, Any]) -> bool:
    """``unknown:`` as declared; by default true for the kinds that colour a value."""
    return bool(decl.get("unknown", kind in UNKNOWN_KINDS))


def no_value(kind: str, decl: Mapping[str, Any]) -> str | None:
    """Grafana's ``noValue``: what the panel says when its queries return nothing."""
    if kind in NO_DATA_KINDS:
        return NO_DATA
    if kind == "table" or shows_unknown(kind, decl):
        return UNKNOWN
    return None


def _mappings(kind: str, decl: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The declared value mappings, then the UNKNOWN one for a kind that colours a value."""
    spec = decl.get("mappings") or {}
    out = value_map(spec) if spec else []
    if kind in UNKNOWN_KINDS and shows_unknown(kind, decl):
        out.append(unknown_map(len(spec)))
    return out


def target(query: Any, kind: str, ref: str) -> dict[str, Any]:
    """One query: a string is the expression with the kind's defaults."""
    spec = {"expr": query} if isinstance(query, str) else query
    table = spec.get("format") == "table"
    instant = spec.get("instant", kind not in RANGE_KINDS)
    return {"datasource": DS, "refId": ref, "expr": spec["expr"],
            "legendFormat": spec.get("legend", "" if table else "__auto"),
            "range": not instant, "instant": instant,
            "format": "table" if table else "time_series", "editorMode": "code"}


def metric_query(decl: Mapping[str, Any]) -> str:
    """The ``metric:`` shorthand: ``sum [by (labels)] (metric{%{target}, matchers})``."""
    matchers = ", ".join(["%{target}", *decl.get("matchers", ())])
    grouping = f" by ({decl['by']})" if decl.get("by") else ""
    return f"sum{grouping} ({decl['metric']}{{{matchers}}})"


def counter_query(decl: Mapping[str, Any]) -> str:
    """The ``counter:`` shorthand: the events of each calendar period, one bar per period.

    Evaluated at the start ``T`` of a period ``P`` (Grafana aligns the steps of a ``P`` interval to
    the periods of the dashboard's time zone): the counter's last sample in ``(T, T + P]`` (for the
    current period: now) minus its last one at or before ``T``. No increase(): it extrapolates and
    reads a counter lowered by a prune as a reset. Each series is differenced before the sum: a
    target that appears or goes within the period (a new ``instance``: a redeployed pod, a moved
    port) adds neither its whole counter nor takes it away. A label set first seen within the period
    counts from 0, provided its target (job, instance) had a series of the counter at ``T``; a
    target without one (Prometheus started within the period with no backfill, a new instance) adds
    nothing to the period rather than every event ever."""
    period = decl.get("period", "1d")
    matchers = ", ".join(["%{target}", *decl.get("matchers", ())])
    grouping = f" by ({decl['by']})" if decl.get("by") else ""
    selector = f"{decl['counter']}{{{matchers}}}"
    end = f"last_over_time({selector}[{period}] offset -{period})"
    start = f"last_over_time({selector}[{period}])"
    return (f"sum{grouping} (\n  {end}\n  - (\n    {start}\n    or\n    {end} * 0\n"
            f"    and on (job, instance) group by (job, instance) ({start})\n  )\n)")


def _reduce() -> dict[str, Any]:
    return {"calcs": ["lastNotNull"], "fields": "", "values": False}


def _options(kind: str, decl: Mapping[str, Any]) -> dict[str, Any]:
    """The kind's own options, as the project's dashboards set them."""
    if kind == "stat":
        return {"reduceOptions": _reduce(), "colorMode": decl.get("color_mode", "value"),
                "graphMode": "area" if decl.get("graph") else "none", "justifyMode": "auto",
                "orientation": "auto", "textMode": "auto", "wideLayout": True, "showPercentChange": False}
    if kind == "gauge":
        return {"reduceOptions": _reduce(), "orientation": "auto", "showThresholdLabels": False,
                "showThresholdMarkers": True, "minVizHeight": 75, "minVizWidth": 75, "sizing": "auto"}
    if kind == "bargauge":
        return {"reduceOptions": _reduce(), "orientation": "horizontal", "displayMode": "gradient",
                "valueMode": "color", "namePlacement": "auto", "showUnfilled": True, "sizing": "auto",
                "minVizHeight": 16, "minVizWidth": 8, "maxVizHeight": 300}
    if kind == "piechart":
        return {"reduceOptions": _reduce(), "pieType": "donut",
                "legend": {"displayMode": "table", "placement": "right", "showLegend": True,
                           "values": ["value", "percent"]},
                "tooltip": {"mode": "single", "sort": "none"}}
    if kind == "timeseries":
        return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                "tooltip": {"mode": "multi", "sort": "desc"}}
    if kind == "state-timeline":
        return {"mergeValues": True, "showValue": "never", "alignValue": "left", "rowHeight": 0.8,
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                "tooltip": {"mode": "single", "sort": "none"}}
    if kind == "table":
        options: dict[str, Any] = {"showHeader": True, "cellHeight": "sm",
                                   "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
        if decl.get("sort_by"):
            options["sortBy"] = [{"displayName": decl["sort_by"], "desc": True}]
        return options
    return {"orientation": "horizontal", "groupWidth": 0.8, "barWidth": 0.9, "showValue": "auto",
            "stacking": "none", "xTickLabelRotation": 0, "xTickLabelSpacing": 0,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
            "tooltip": {"mode": "multi", "sort": "none"}}


def _custom(kind: str, decl: Mapping[str, Any]) -> dict[str, Any] | None:
    if kind == "timeseries":
        bars = bool(decl.get("bars"))
        custom: dict[str, Any] = {
            "drawStyle": "bars" if bars else "line", "lineWidth": 1, "fillOpacity": 60 if bars else 10,
            "showPoints": "never", "spanNulls": False,
            "stacking": {"mode": "normal" if decl.get("stack") else "none", "group": "A"},
            "axisPlacement": "auto", "axisSoftMin": 0, "lineInterpolation": "linear",
            "thresholdsStyle": {"mode": "dashed" if decl.get("threshold_lines") else "off"}}
        if bars:
            # A counter's bar (``counter:``) stands for the period that STARTS at its timestamp: drawn
            # after it. A windowed gauge's bar stands for the period that ENDS there: drawn before it.
            custom["barAlignment"] = 1 if decl.get("counter") else -1
        return custom
    if kind == "state-timeline":
        return {"fillOpacity": 80, "lineWidth": 0}
    if kind == "table":
        return {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}
    if kind == "barchart":
        return {"fillOpacity": 80, "gradientMode": "none", "lineWidth": 1, "axisPlacement": "auto",
                "axisSoftMin": 0}
    return None


def _table_transformations(decl: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Instant queries merged into one row per label set; ``columns`` renames and orders them."""
    columns = decl.get("columns", {})
    hidden = ["Time", "__name__", "job", *decl.get("hide", ())]
    return [{"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {name: True for name in hidden},
                                           "indexByName": {name: i for i, name in enumerate(columns)},
                                           "renameByName": columns}}]


def _text(decl: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "text", "title": decl["title"], "description": decl.get("description", ""), "datasource": DS,
            "targets": [], "fieldConfig": {"defaults": {"unit": "none"}, "overrides": []},
            "options": {"mode": "markdown", "content": str(decl.get("markdown", "")).strip() + "\n",
                        "code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False}}}


def merge(base: Any, patch: Any) -> Any:
    """``patch`` deep-merged over ``base``: mappings key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return patch


def panel(decl: Mapping[str, Any], links: Links, origin: str) -> Panel:
    """One panel declaration (after its placeholders are filled) as Grafana JSON and a size."""
    if "raw" in decl:
        size = decl.get("size", (12, 8))
        return Panel(dict(decl["raw"]), int(size[0]), int(size[1]))
    kind = decl.get("kind")
    if kind not in KINDS:
        raise ConfigError(origin, f"panel {decl.get('title')!r}.kind",
                          f"must be one of {', '.join(KINDS)}, got {kind!r}")
    width, height = decl.get("size", SIZES[kind])
    body = _text(decl) if kind == "text" else _body(kind, decl, links)
    if decl.get("grafana"):
        body = merge(body, decl["grafana"])
    return Panel(body, int(width), int(height))


def _body(kind: str, decl: Mapping[str, Any], links: Links) -> dict[str, Any]:
    colour = {"mode": "palette-classic"} if kind in ("timeseries", "piechart", "barchart") else {"mode": "thresholds"}
    defaults: dict[str, Any] = {"unit": "none" if kind == "state-timeline" else decl.get("unit", "short"),
                                "thresholds": steps(decl.get("thresholds", ["green"])),
                                "mappings": _mappings(kind, decl), "color": colour}
    text = no_value(kind, decl)
    if text:
        # Grafana's text when a query returns nothing: the panel says it does not know.
        defaults["noValue"] = text
    for key in ("min", "max", "decimals"):
        if decl.get(key) is not None:
            defaults[key] = decl[key]
    custom = _custom(kind, decl)
    if custom:
        defaults["custom"] = custom
    queries = decl.get("queries") or []
    body: dict[str, Any] = {
        "type": kind, "title": decl["title"], "description": decl.get("description", ""), "datasource": DS,
        "targets": [target(query, kind, REFS[index]) for index, query in enumerate(queries)],
        "fieldConfig": {"defaults": defaults, "overrides": []}, "options": _options(kind, decl)}
    if decl.get("links"):
        body["links"] = [links.expand(link) for link in decl["links"]]
    if kind == "table":
        body["transformations"] = _table_transformations(decl)
    if decl.get("interval"):
        # The step of every query is the period itself: one bar per period, each event in one bar.
        body["interval"] = decl["interval"]
        body["maxDataPoints"] = MAX_DATA_POINTS
    if decl.get("period"):
        # Calendar periods: the panel's own range starts at a period boundary of the dashboard's
        # time zone (now-7d/d) and ends now, so the current period so far is the last bar.
        history = decl.get("history", PERIODS[decl["period"]][1])
        body["timeFrom"] = f"now-{history}/{PERIODS[decl['period']][0]}"
    return body


def period_panel(decl: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """A ``period:`` panel with what it implies: bars, one step per period, the ``counter:`` query."""
    period = decl.get("period")
    where = f"panel {decl.get('title')!r}"
    if period not in PERIODS:
        raise ConfigError(origin, f"{where}.period", f"must be one of {', '.join(PERIODS)}, got {period!r}")
    if decl.get("kind", "timeseries") != "timeseries":
        raise ConfigError(origin, f"{where}.kind", "a period: panel is a timeseries (bars)")
    if decl.get("counter") and decl.get("queries"):
        raise ConfigError(origin, f"{where}.counter", "give counter: or queries:, not both")
    if not decl.get("counter") and not decl.get("queries"):
        raise ConfigError(origin, f"{where}.period", "needs counter: (or queries: of a windowed gauge)")
    out = {"kind": "timeseries", **decl, "bars": True, "interval": period}
    if decl.get("counter"):
        out["queries"] = [{"expr": counter_query(decl), "legend": decl.get("legend", "__auto")}]
    return out


def _all_panels(board: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a laid-out dashboard, those inside collapsed rows too."""
    out: list[dict[str, Any]] = []
    for item in board.get("panels", []):
        out.append(item)
        out.extend(item.get("panels", []))
    return out


def resolve_panel_links(boards: Mapping[str, dict[str, Any]], origin: str) -> None:
    """Each ``{dashboard: uid, panel: title}`` link gets that panel's id (viewPanel), or an error naming it."""
    ids = {uid: {item["title"]: item["id"] for item in _all_panels(board)} for uid, board in boards.items()}
    for board in boards.values():
        for item in _all_panels(board):
            for link in item.get("links", []):
                if PANEL_MARK not in link["url"]:
                    continue
                uid = link["url"].split("/d/", 1)[1].split("?", 1)[0]
                title = link["url"].split(PANEL_MARK)[1]
                if title not in ids.get(uid, {}):
                    raise ConfigError(origin, f"panel {item['title']!r}.links",
                                      f"no panel titled {title!r} on dashboard {uid!r}")
                link["url"] = link["url"].replace(f"{PANEL_MARK}{title}{PANEL_MARK}", str(ids[uid][title]))
