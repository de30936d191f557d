"""The one config every pack's rules and dashboards are rendered with (node-mixin's config.libsonnet).

The job selectors and URLs come from here; the thresholds are the packs' own parameters
(``alerts.yaml``), overridden by name from ``parameters``. The committed files are the output of
the defaults; a user with another scrape job or other URLs renders them with
``pipeline-exporter mixin --job NAME --grafana-url URL --out DIR`` or a YAML file of overrides.
Without a Grafana URL the alerts' dashboard links are paths (``/d/<uid>?orgId=1``), completed by
the one Grafana address set in alertmanager/templates/grafana.tmpl.
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline_exporter import durations, validation
from pipeline_exporter.errors import ConfigError

LABEL_VALUE = re.compile(r'^[^"\\\n]+$')


def seconds(duration: str) -> int:
    """A Prometheus duration (``90s``, ``15m``, ``1m30s``, ``7d``) in whole seconds (``durations``)."""
    return int(durations.parse_promql(duration))


@dataclass(frozen=True)
class MixinConfig:
    """Selectors, URLs, thresholds and windows for one Prometheus / Grafana setup."""

    job: str = "pipeline-exporter"                      # the exporter's scrape job
    prometheus_job: str = "prometheus"                  # Prometheus scraping itself
    alertmanager_job: str = "alertmanager"
    # Grafana as operators reach it, no trailing slash; "" (the default): dashboard_url is the
    # dashboard's path, and Alertmanager's templates prepend the one address set in
    # alertmanager/templates/grafana.tmpl (no localhost in the rendered files).
    grafana_url: str = ""
    runbook_url: str = "https://github.com/333method/pipeline-exporter/blob/main/docs/runbooks.md"
    # The dashboards' time zone: where per-day bars start and end. "utc", "browser", "" (the
    # viewer's Grafana preference) or an IANA name such as "Europe/Paris".
    timezone: str = "utc"
    # Overrides of the packs' parameters (thresholds, windows, guards) by name; each pack takes
    # the names it declares in its alerts.yaml, checked against the declared type.
    parameters: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "mixin config"                        # where the parameters came from, for errors

    @property
    def selector(self) -> str:
        """The matcher every exporter selector carries: ``job="pipeline-exporter"``."""
        return f'job="{self.job}"'

    def runbook(self, alert: str) -> str:
        """The runbook section of one alert (GitHub's anchor: the name in lower case)."""
        return f"{self.runbook_url}#{alert.lower()}"

    def dashboard(self, uid: str) -> str:
        """A dashboard's address (its path while no Grafana URL is set); notifications append the
        instance and a time range."""
        return f"{self.grafana_url}/d/{uid}?orgId=1"


DEFAULT = MixinConfig()


def validate(config: MixinConfig, source: str = "mixin config") -> MixinConfig:
    """Refuse values that would generate rules or dashboards that silently match nothing."""
    for key in ("job", "prometheus_job", "alertmanager_job"):
        if not LABEL_VALUE.match(getattr(config, key)):
            raise ConfigError(source, key, f"must be a plain label value, got {getattr(config, key)!r}")
    for key in ("grafana_url", "runbook_url"):
        url = getattr(config, key)
        if key == "grafana_url" and url == "":
            continue
        if not re.match(r"^https?://\S+$", url) or url.endswith("/"):
            raise ConfigError(source, key, f"must be an http(s) URL without a trailing slash, got {url!r}")
    if config.timezone not in ("utc", "browser", "") and not _known_zone(config.timezone):
        raise ConfigError(source, "timezone", f'must be "utc", "browser", "" or an IANA time zone such as '
                                              f'"Europe/Paris", got {config.timezone!r}')
    return config


def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return False
    return True


SETTINGS = ("job", "prometheus_job", "alertmanager_job", "grafana_url", "runbook_url", "timezone")


def flatten(document: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Parameters from a config file: ``parameters:``, and the older ``thresholds:`` / ``windows:``
    / ``llm_monthly_budget_usd`` keys under their parameter names (``thresholds.bounce_rate.critical``
    is ``bounce_rate_critical``, a bare level the warning one; ``windows.fast`` is ``window_fast``)."""
    out: dict[str, Any] = {}
    for key in ("parameters", "thresholds", "windows"):
        section = document.get(key, {})
        if not isinstance(section, Mapping):
            raise ConfigError(source, key, "must be a mapping")
        for name, value in section.items():
            if key == "windows":
                out[f"window_{name}"] = value
            elif key == "thresholds" and isinstance(value, Mapping):
                out.update({f"{name}_{level}": item for level, item in value.items()})
            elif key == "thresholds" and name in LEVELS:
                out[f"{name}_warning"] = value
            else:
                out[str(name)] = value
    if "llm_monthly_budget_usd" in document:
        out["llm_monthly_budget_usd"] = document["llm_monthly_budget_usd"]
    return out


# method333's thresholds that had a warning and a critical level before they became parameters.
LEVELS = ("bounce_rate", "complaint_rate", "sms_failure_rate", "coverage")


def load(path: Path | None = None, parameters: Mapping[str, Any] | None = None, **overrides: Any) -> MixinConfig:
    """The defaults, then a YAML file's keys, then command-line overrides (None = not given)."""
    config = DEFAULT
    source = str(path) if path else "command line"
    if path is not None:
        try:
            document = validation.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(str(path), "", f"cannot read: {exc}") from None
        if not isinstance(document, Mapping):
            raise ConfigError(str(path), "", "must be a mapping of config keys")
        known = (*SETTINGS, "parameters", "thresholds", "windows", "llm_monthly_budget_usd")
        for key, value in document.items():
            if key not in known:
                raise ConfigError(str(path), str(key), f"unknown key; known: {', '.join(sorted(known))}")
            if key in SETTINGS and not isinstance(value, str):
                raise ConfigError(str(path), str(key), f"must be a string, got {value!r}")
        settings = {key: document[key] for key in SETTINGS if key in document}
        config = dataclasses.replace(config, **settings, parameters=flatten(document, str(path)), origin=str(path))
    given = {key: value for key, value in overrides.items() if value is not None}
    config = dataclasses.replace(config, **given,
                                 parameters={**config.parameters, **(parameters or {})})
    return validate(config, source)
