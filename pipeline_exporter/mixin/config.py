"""The one config that the rules and the dashboards are generated from (node-mixin's config.libsonnet).

Every selector, threshold, volume guard, window and URL that a rule or a panel uses comes from a
``MixinConfig``. The committed files in alerts/ and grafana/dashboards/ are the output of the
defaults below; a user with another scrape job or other URLs regenerates them with
``pipeline-exporter mixin --job NAME --grafana-url URL --out DIR`` or a YAML file of overrides.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline_exporter import durations
from pipeline_exporter.errors import ConfigError

# The values of the exporter's `window` label (metrics.md, Version 2).
EXPORTER_WINDOWS = ("15m", "1h", "24h", "7d")
WINDOW_SECONDS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 604800}
LABEL_VALUE = re.compile(r'^[^"\\\n]+$')


def seconds(duration: str) -> int:
    """A config duration in whole seconds, read by the one parser (``durations``)."""
    return int(durations.parse(duration))


@dataclass(frozen=True)
class Levels:
    """An alert level and, for alerts with two severities, the critical one."""

    warning: float
    critical: float | None = None


@dataclass(frozen=True)
class Windows:
    """Which of the exporter's windows each alert and per-period panel reads."""

    # A bad batch shows here; deliverability alerts also need it, so they clear within an hour.
    fast: str = "1h"
    # Deliverability's main window, the per-day bars and the "last 24 h" stats.
    slow: str = "24h"
    # HTTP 429 bursts.
    burst: str = "15m"
    # The reply rate's baseline (ReplyRateDropped).
    baseline: str = "7d"


@dataclass(frozen=True)
class Thresholds:
    """Alert levels and guards; the thresholds table in docs/alerting.md is rendered from these."""

    bounce_rate: Levels = Levels(0.05, 0.10)            # Resend's alert level, and twice it
    complaint_rate: Levels = Levels(0.001, 0.005)
    sms_failure_rate: Levels = Levels(0.05)             # carrier filtering
    min_sends: int = 20                                 # sends in a window before a ratio counts
    min_events: int = 3                                 # bounces, complaints or failures, likewise
    forbidden_per_window: int = 20                      # HTTP 403 from one source in the fast window
    rate_limited_per_window: int = 10                   # HTTP 429 from one source in the burst window
    coverage: Levels = Levels(0.70)                     # line coverage alert level
    coverage_target: float = 0.80                       # drawn on the dashboards, never alerts
    sites_stuck: int = 50                               # stuck sites in one processing status
    cron_stale_intervals: float = 2.0                   # CronJobStale: intervals without a start
    query_failing_for: str = "15m"                      # PipelineExporterQueryFailing's `for`
    disk_fill_horizon: str = "24h"                      # HostDiskWillFillIn24h: fills within ...
    disk_fill_pace: str = "6h"                          # ... at the pace of the last ...
    outreach_stall_for: str = "1h"                      # no send in the fast window for this long
    reply_drop_factor: float = 0.5                      # 24 h reply rate under this x the 7-day one
    reply_min_expected: int = 10                        # replies the 7-day rate predicts for 24 h


@dataclass(frozen=True)
class MixinConfig:
    """Selectors, URLs, thresholds and windows for one Prometheus / Grafana setup."""

    job: str = "pipeline-exporter"                      # the exporter's scrape job
    prometheus_job: str = "prometheus"                  # Prometheus scraping itself
    alertmanager_job: str = "alertmanager"
    grafana_url: str = "http://localhost:3000"          # as operators reach it, no trailing slash
    runbook_url: str = "https://github.com/333method/pipeline-exporter/blob/main/docs/runbooks.md"
    # A monthly LLM budget for setups whose exporter has no llm_monthly_budget_usd: used only
    # where pipeline_llm_budget_usd is absent, as provider="total".
    llm_monthly_budget_usd: float | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    windows: Windows = field(default_factory=Windows)

    @property
    def selector(self) -> str:
        """The matcher every exporter selector carries: ``job="pipeline-exporter"``."""
        return f'job="{self.job}"'

    def runbook(self, alert: str) -> str:
        """The runbook section of one alert (GitHub's anchor: the name in lower case)."""
        return f"{self.runbook_url}#{alert.lower()}"

    def dashboard(self, uid: str) -> str:
        """A dashboard's address; notifications append the instance and a time range."""
        return f"{self.grafana_url}/d/{uid}?orgId=1"


DEFAULT = MixinConfig()


def validate(config: MixinConfig, source: str = "mixin config") -> MixinConfig:
    """Refuse values that would generate rules or dashboards that silently match nothing."""
    for key in ("job", "prometheus_job", "alertmanager_job"):
        if not LABEL_VALUE.match(getattr(config, key)):
            raise ConfigError(source, key, f"must be a plain label value, got {getattr(config, key)!r}")
    for key in ("grafana_url", "runbook_url"):
        url = getattr(config, key)
        if not re.match(r"^https?://\S+$", url) or url.endswith("/"):
            raise ConfigError(source, key, f"must be an http(s) URL without a trailing slash, got {url!r}")
    for key, window in dataclasses.asdict(config.windows).items():
        if window not in EXPORTER_WINDOWS:
            raise ConfigError(source, f"windows.{key}",
                              f"must be one of the exporter's windows {', '.join(EXPORTER_WINDOWS)}, got {window!r}")
    for key in ("query_failing_for", "disk_fill_horizon", "disk_fill_pace", "outreach_stall_for"):
        value = getattr(config.thresholds, key)
        try:
            durations.parse_promql(value)
        except ValueError as exc:
            raise ConfigError(source, f"thresholds.{key}", str(exc)) from None
    budget = config.llm_monthly_budget_usd
    if budget is not None and not budget > 0:
        raise ConfigError(source, "llm_monthly_budget_usd", f"must be a positive number, got {budget!r}")
    return config


def merge(base: Any, overrides: Mapping[str, Any], source: str, path: str = "") -> Any:
    """A copy of a config dataclass with ``overrides`` applied; unknown keys are errors."""
    fields = {item.name: item for item in dataclasses.fields(base)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        where = f"{path}{key}"
        if key not in fields:
            raise ConfigError(source, where, f"unknown key; known: {', '.join(sorted(fields))}")
        current = getattr(base, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(source, where, "must be a mapping")
            changes[key] = merge(current, value, source, f"{where}.")
        else:
            changes[key] = _coerce(current, value, source, where)
    return dataclasses.replace(base, **changes)


def _coerce(current: Any, value: Any, source: str, where: str) -> Any:
    """A YAML scalar checked against the type of the default it replaces (None: an optional number)."""
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(source, where, f"must be a string, got {value!r}")
        return value
    if value is None and current is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(source, where, f"must be a number, got {value!r}")
    if isinstance(current, int) and not isinstance(current, bool):
        if not float(value).is_integer():
            raise ConfigError(source, where, f"must be a whole number, got {value!r}")
        return int(value)
    return float(value)


def load(path: Path | None = None, **overrides: Any) -> MixinConfig:
    """The defaults, then a YAML file's keys, then command-line overrides (None = not given)."""
    config = DEFAULT
    if path is not None:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(str(path), "", f"cannot read: {exc}") from None
        if not isinstance(document, Mapping):
            raise ConfigError(str(path), "", "must be a mapping of config keys")
        config = merge(config, _levels_from_yaml(document), str(path))
    given = {key: value for key, value in overrides.items() if value is not None}
    config = merge(config, given, "command line")
    return validate(config, str(path) if path else "command line")


def _levels_from_yaml(document: Mapping[str, Any]) -> dict[str, Any]:
    """YAML writes a Levels as {warning: x, critical: y}; keep every other key as it is."""
    thresholds = document.get("thresholds")
    if not isinstance(thresholds, Mapping):
        return dict(document)
    converted = {key: (value if not isinstance(value, (int, float)) or key not in _LEVEL_KEYS
                       else {"warning": value})
                 for key, value in thresholds.items()}
    return {**document, "thresholds": converted}


_LEVEL_KEYS = {item.name for item in dataclasses.fields(Thresholds)
               if isinstance(getattr(Thresholds(), item.name), Levels)}
