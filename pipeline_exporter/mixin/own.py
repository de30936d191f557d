"""``pipeline-exporter mixin --pack PATH``: the rules and dashboards of a pack file anywhere on disk.

What the pack declares (``alerts.yaml``, ``dashboards/*.yaml`` in its pack folder, or in the
``<stem>/`` folder beside a pack file ``<stem>.yaml``, docs/packs/format.md) is rendered as
declared; what it does not is derived from the pack's metric definitions
(``derive_alerts.derive_pack``). Both go through the one renderer of the built-in packs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.mixin import derive_names as names
from pipeline_exporter.mixin.derive_alerts import Derived, derive_pack
from pipeline_exporter.mixin.render import Pack as Declared
from pipeline_exporter.mixin.render import declared as from_memory
from pipeline_exporter.mixin.render import load_pack as load_declarations
from pipeline_exporter.packloader import PACK_FILE, Pack, declarations_folder, load_pack


def is_path(ref: str) -> bool:
    """A ``--pack`` value that names a file or folder rather than a built-in pack."""
    return "/" in ref or Path(ref).suffix in (".yaml", ".yml") or Path(ref).exists()


def is_own(ref: str, builtin: Iterable[str] = ()) -> bool:
    """A user's pack: a path to a pack file (existing or not: reading it says what is wrong) or to
    a folder holding a pack.yaml; a folder without one is a folder of declarations only."""
    if ref in set(builtin) or not is_path(ref):
        return False
    return not Path(ref).expanduser().is_dir() or pack_file(ref).is_file()


def pack_file(ref: str) -> Path:
    """The pack file ``ref`` names: itself, or a folder's ``pack.yaml``."""
    path = Path(ref).expanduser()
    return path / PACK_FILE if path.is_dir() else path


def read(ref: str) -> Pack:
    """The pack's metric definitions (its queries), read and checked as the exporter reads them."""
    return load_pack(str(pack_file(ref).resolve()), Path.cwd())


def declarations(pack: Pack, folder: Path) -> tuple[Derived, dict[str, str]]:
    """The pack's own declarations where its folder has them, derived ones for the rest; and the
    derived ones as YAML files (``packs/<name>/...``), to copy beside the pack and edit."""
    derived = derive_pack(pack)
    declared = load_declarations(folder, names.slug(pack.name))
    # A declaration that names its pack must name this one: a copied folder would render another's.
    for origin, document in [("alerts.yaml", declared.alerts),
                             *((f"dashboards/{uid}.yaml", board) for uid, board in declared.dashboards.items())]:
        if "pack" in document and document["pack"] != pack.name:
            raise ConfigError(str(folder / origin), "pack", f"declares pack {document['pack']!r}, but "
                              f"{pack.origin} is pack {pack.name!r}")
    base = f"packs/{names.slug(pack.name)}"
    files: dict[str, str] = {}
    alerts: dict[str, Any] = dict(declared.alerts)
    if not alerts:
        alerts = derived.alerts
        files[f"{base}/alerts.yaml"] = to_yaml(alerts, pack)
    boards = {uid: dict(board) for uid, board in declared.dashboards.items()}
    if not boards:
        boards = derived.dashboards
        files.update({f"{base}/dashboards/{uid}.yaml": to_yaml(board, pack) for uid, board in boards.items()})
    return Derived(dashboards=boards, alerts=alerts), files


class _Dumper(yaml.SafeDumper):
    """Multi-line text (PromQL) as literal blocks, so a derived declaration reads like a written one."""


_Dumper.add_representer(str, lambda dumper, data: dumper.represent_scalar(
    "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None))


def to_yaml(declaration: Mapping[str, Any], pack: Pack) -> str:
    """A derived declaration as the YAML a user would write (docs/packs/format.md)."""
    origin = Path(pack.origin)
    where = declarations_folder(origin)
    head = (f"# Derived by `pipeline-exporter mixin` from the metric definitions of pack {pack.name}\n"
            f"# (it declares none). To change it, copy packs/{names.slug(pack.name)}/'s alerts.yaml and\n"
            f"# dashboards/ into {where}/ (the pack's own declarations folder): declared files win.\n")
    return head + yaml.dump({"pack": pack.name, **declaration}, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                            width=100)


def load(ref: str) -> Declared:
    """The pack at ``ref`` as the renderer takes it: its declarations, derived where it has none."""
    path = pack_file(ref).resolve()
    pack = read(ref)
    folder = declarations_folder(path)
    decl, _ = declarations(pack, folder)
    return from_memory(names.slug(pack.name), folder, decl.alerts, decl.dashboards)


def derived_files(refs: Iterable[str], builtin: Iterable[str] = ()) -> dict[str, str]:
    """The derived declarations of the user's packs among ``refs`` as YAML, by path under the output folder."""
    files: dict[str, str] = {}
    for ref in refs:
        if is_own(ref, builtin):
            files.update(declarations(read(ref), declarations_folder(pack_file(ref).resolve()))[1])
    return files
