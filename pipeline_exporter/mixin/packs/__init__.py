"""Rules and dashboards of the other built-in packs, one module per pack, from the same config.

``render(name, config)`` returns a pack's generated files by path: its rules in
``alerts/packs/<name>/`` (Prometheus loads them with the pack's switch, docs/packs/<name>.md) and
its dashboards in ``grafana/packs/<name>/`` (provisioned into the pack's own Grafana folder).
"""

from __future__ import annotations

from pipeline_exporter.mixin.config import DEFAULT, MixinConfig
from pipeline_exporter.mixin.packs import botflow, crm, scraper

PACKS = {"botflow": botflow.render, "crm": crm.render, "scraper": scraper.render}


def render(name: str, config: MixinConfig = DEFAULT) -> dict[str, str]:
    """Relative path -> text of every file generated for one pack."""
    return PACKS[name](config)


def render_all(config: MixinConfig = DEFAULT) -> dict[str, str]:
    files: dict[str, str] = {}
    for build in PACKS.values():
        files.update(build(config))
    return files
