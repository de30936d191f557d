"""Rules and dashboards rendered from every pack's declarations (node-mixin style): ``pipeline-exporter mixin``.

A pack's dashboards and alerts are data in its folder (``pipeline_exporter/packs/<name>/``,
docs/packs/format.md); ``render(config)`` returns every rendered file by its path under the output
folder, laid out as in this repository. The committed copies are ``render(DEFAULT)``.
"""

from __future__ import annotations

from pipeline_exporter.mixin.config import DEFAULT, MixinConfig
from pipeline_exporter.mixin.render import Pack, declared, load_pack, packs, render_all, render_pack

__all__ = ["DEFAULT", "MixinConfig", "Pack", "declared", "load_pack", "packs", "render", "render_pack"]


def render(config: MixinConfig = DEFAULT) -> dict[str, str]:
    """Relative path -> text of every file every pack's declarations give."""
    return render_all(config)
