"""What every further pack's rules share: selectors carrying the config's job matcher, the
``window`` matcher of the ``*_recent`` gauges, and alerts whose runbook is the pack's page."""

from __future__ import annotations

from exporter.mixin.config import MixinConfig
from exporter.mixin.rules import Alert


def win(length: str) -> str:
    """The matcher of one window of a ``*_recent`` gauge."""
    return f'window="{length}"'


def select(config: MixinConfig, metric: str, *matchers: str) -> str:
    """``metric{job="…", matchers…}``."""
    return f"{metric}{{{', '.join((config.selector, *matchers))}}}"


def runbook(config: MixinConfig, pack: str, alert: str) -> str:
    """The runbook section of one of a pack's alerts: its page beside the main runbooks."""
    base = config.runbook_url.rsplit("/", 1)[0]
    return f"{base}/packs/{pack}.md#{alert.lower()}"


def pack_alert(pack: str, config: MixinConfig, name: str, severity: str, expr: str, for_: str, summary: str,
               description: str, resolved: str, condition: str, uid: str, value: str = "") -> Alert:
    """One of a pack's alerts, linked to its runbook section and to the dashboard ``uid``."""
    return Alert(name=name, severity=severity, expr=expr, for_=for_, summary=summary,
                 description=description, resolved=resolved, runbook_url=runbook(config, pack, name),
                 dashboard_url=config.dashboard(uid), condition=condition, value=value, area=pack)
