"""One renderer for every pack: its declarations (docs/packs/format.md) to rule files and dashboards.

``render_pack(pack, config)`` returns the files of one pack by path under the output folder;
``render_all(config)`` those of every pack in ``pipeline_exporter/packs/``. Nothing here knows a
pack by name: where the files go, their headers and thresholds come from the pack's own data.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.mixin.config import DEFAULT, MixinConfig, seconds
from pipeline_exporter.mixin.render import dashboards as boards
from pipeline_exporter.mixin.render import docs
from pipeline_exporter.mixin.render.format import Parameter, Values, active, check, parameter, read
from pipeline_exporter.mixin.render.panels import Links, resolve_panel_links
from pipeline_exporter.mixin.render.rules import HOLD_STEP, Alert, Group, Raw, Recording, Rule, held
from pipeline_exporter.mixin.render.rules import render as render_rules

PACKS_DIR = Path(__file__).resolve().parents[2] / "packs"
# Appended to a dashboard address: the alert's exporter, when it has one.
INSTANCE_VARIABLE = "{{with $labels.instance}}&var-instance={{.}}{{end}}"


@dataclass(frozen=True)
class Pack:
    """A pack's declarations as read from its folder, placeholders not yet filled."""

    name: str
    folder: Path
    alerts: Mapping[str, Any] = field(default_factory=dict)
    dashboards: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    parameters: Mapping[str, Parameter] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return str(self.folder / "alerts.yaml")

    @property
    def source(self) -> str:
        """Where the declarations come from, as the rendered files' headers name it: the package's
        folder for a built-in pack, the user's own folder otherwise."""
        if self.folder.resolve().parent == PACKS_DIR:
            return f"pipeline_exporter/packs/{self.folder.name}/"
        return f"{self.folder}/"

    def output(self, key: str) -> str:
        defaults = {"alerts": f"alerts/packs/{self.name}/{self.name}-alerts.yml",
                    "recording": f"alerts/packs/{self.name}/{self.name}-recording-rules.yml",
                    "dashboards": f"grafana/packs/{self.name}", "docs": ""}
        return str((self.alerts.get("output") or {}).get(key, defaults[key]))


def declared(name: str, folder: Path, alerts: Mapping[str, Any],
             dashboards: Mapping[str, Mapping[str, Any]]) -> Pack:
    """A pack from declarations already in memory (read from files, or derived from a pack's
    metrics where it declares none); ``folder`` names the files in error messages."""
    origin = str(folder / "alerts.yaml")
    specs = alerts.get("parameters") or {}
    if not isinstance(specs, Mapping):
        raise ConfigError(origin, "parameters", "must be a mapping of name to {type, default, help}")
    parameters = {key: parameter(key, spec, origin) for key, spec in specs.items()}
    return Pack(name, folder, alerts, dashboards, parameters)


def load_pack(folder: Path, name: str | None = None) -> Pack:
    """The declarations in ``folder`` (``alerts.yaml``, ``dashboards/*.yaml``)."""
    alerts = read(folder / "alerts.yaml") if (folder / "alerts.yaml").exists() else {}
    dashboards = {}
    for path in sorted((folder / "dashboards").glob("*.yaml")):
        declaration = read(path)
        if declaration.get("uid") != path.stem:
            raise ConfigError(str(path), "uid",
                              f"must be the file's name {path.stem!r}, got {declaration.get('uid')!r}")
        dashboards[path.stem] = declaration
    return declared(name or folder.name, folder, alerts, dashboards)


def packs() -> dict[str, Pack]:
    """Every built-in pack that declares dashboards or alerts, by name (its folder's)."""
    return dict(_builtin(PACKS_DIR))


@functools.cache
def _builtin(folder: Path) -> tuple[tuple[str, Pack], ...]:
    """The built-in packs, read once per process: one `mixin` run asks for them from its flags'
    help, the --pack check and the parameter check, and their YAML is most of its time."""
    return tuple((path.name, load_pack(path)) for path in sorted(folder.iterdir())
                 if (path / "alerts.yaml").exists() or (path / "dashboards").is_dir())


def values(pack: Pack, config: MixinConfig) -> Values:
    """The pack's parameters: defaults, then the config's overrides of the names it declares."""
    resolved = {name: spec.default for name, spec in pack.parameters.items()}
    for name, value in config.parameters.items():
        if name in pack.parameters:
            resolved[name] = check(pack.parameters[name], value, config.origin, f"parameters.{name}")
    return Values(config, resolved, pack.origin)


def _runbook(pack: Pack, config: MixinConfig, page: str = "") -> Any:
    """Alert name -> its runbook section: on ``page`` beside the config's runbook page ("." is that page)."""
    page = page or str(pack.alerts.get("runbook") or f"packs/{pack.name}.md")
    url = config.runbook_url if page == "." else f"{config.runbook_url.rsplit('/', 1)[0]}/{page}"
    return lambda alert: f"{url}#{alert.lower()}"


def _rule(pack: Pack, config: MixinConfig, decl: Mapping[str, Any], keep_firing_for: str = "") -> Rule:
    if "raw" in decl:
        return Raw(decl["raw"], str(decl.get("why", "")))
    if "record" in decl:
        return Recording(decl["record"], decl["expr"], str(decl.get("why", "")))
    url = config.dashboard(decl["dashboard"]) + (INSTANCE_VARIABLE if decl.get("dashboard_instance") else "")
    expr, for_, hold = decl["expr"], str(decl.get("for", "0m")), str(decl.get("hold") or "")
    if hold:
        if "for" in decl:
            raise ConfigError(pack.origin, decl["alert"], "takes `hold` or `for`, not both")
        try:
            span = seconds(hold)
        except ValueError as exc:
            raise ConfigError(pack.origin, f"{decl['alert']}.hold", str(exc)) from None
        if span < 2 * HOLD_STEP or span % HOLD_STEP:
            raise ConfigError(pack.origin, f"{decl['alert']}.hold", f"must be whole minutes, at least 2, got {hold!r}")
        # The count reaches the span's minutes one evaluation before a `for` of that span would
        # fire; `for: 1m` makes up the difference.
        expr, for_ = held(expr, span), "1m"
    return Alert(name=decl["alert"], severity=decl["severity"], expr=expr, for_=for_, hold=hold,
                 summary=decl.get("summary", ""), description=decl.get("description", ""),
                 resolved=decl.get("resolved", ""), runbook_url=_runbook(pack, config, decl.get("runbook", ""))(
                     decl["alert"]), dashboard_url=url, condition=decl.get("condition", ""),
                 value=decl.get("value", ""), area=decl.get("area", pack.name), why=str(decl.get("why", "")),
                 keep_firing_for=str(decl.get("keep_firing_for", keep_firing_for) or ""),
                 labels=decl.get("labels") or {}, annotations=decl.get("annotations") or {})


def groups(pack: Pack, config: MixinConfig, key: str) -> list[Group]:
    """The pack's recording (``key="recording"``) or alerting (``"groups"``) rule groups."""
    vals = values(pack, config)
    out, seen = [], set()
    for index, group in enumerate(pack.alerts.get(key) or []):
        filled = vals.fill(group, f"{key}[{index}]")
        rules = []
        for rule in (filled.get("rules") or []):
            # Two windows set to the same span render the same recording rule twice: keep one.
            same = (rule.get("record"), rule.get("expr")) if "record" in rule else None
            if active(rule, vals) and (same is None or same not in seen):
                rules.append(_rule(pack, config, rule, str(filled.get("keep_firing_for") or "")))
                seen.add(same)
        out.append(Group(filled["name"], tuple(rules), str(filled.get("interval", "")), str(filled.get("why", ""))))
    return out


def _header(pack: Pack, config: MixinConfig, what: str) -> str:
    heads = pack.alerts.get("headers") or {}
    about = f" {heads['about']}" if heads.get("about") else ""
    grafana = (f"Grafana {config.grafana_url}" if config.grafana_url else
               "dashboard links as paths (/d/<uid>), on the Grafana address set in alertmanager/templates/grafana.tmpl")
    return (f"{heads.get(what, f'{what.capitalize()} rules of the {pack.name} pack.')}\n\n"
            f"GENERATED by `pipeline-exporter mixin` from {pack.source} "
            f'(docs/packs/format.md); do not edit by hand. This copy: job="{config.job}", {grafana}. '
            "The repository's copy is regenerated with `pipeline-exporter mixin "
            "--out .` (tests fail on drift); for another setup: pipeline-exporter mixin --job NAME "
            f"--grafana-url URL --runbook-url URL --out DIR.{about}")


def render_pack(pack: Pack, config: MixinConfig = DEFAULT) -> dict[str, str]:
    """Relative path -> text of every file one pack's declarations give for ``config``."""
    files: dict[str, str] = {}
    for what, key in (("recording", "recording"), ("alerts", "groups")):
        if pack.alerts.get(key):
            files[pack.output(what)] = render_rules(_header(pack, config, what), groups(pack, config, key))
    vals = values(pack, config)
    links = Links(_runbook(pack, config))
    built = {uid: boards.dashboard(declaration,
                                   Values(config, vals.parameters, str(pack.folder / "dashboards" / f"{uid}.yaml")),
                                   links)
             for uid, declaration in pack.dashboards.items()}
    resolve_panel_links(built, str(pack.folder / "dashboards"))
    for uid, board in built.items():
        files[f"{pack.output('dashboards')}/{uid}.json"] = boards.to_json(board)
    return files


def documents(root: Path, config: MixinConfig = DEFAULT, selected: Mapping[str, Pack] | None = None) -> dict[str, str]:
    """Each ``output.docs`` Markdown file under ``root`` with its thresholds table regenerated."""
    out: dict[str, str] = {}
    for pack in (selected or packs()).values():
        target = pack.output("docs")
        if target:
            alerts = [alert for group in groups(pack, config, "groups") for alert in group.alerts]
            text = out.get(target) or (root / target).read_text(encoding="utf-8")
            out[target] = docs.splice(text, docs.thresholds_table(alerts), target)
    return out


def known_parameters(selected: Mapping[str, Pack] | None = None) -> set[str]:
    return {name for pack in (selected or packs()).values() for name in pack.parameters}


def render_all(config: MixinConfig = DEFAULT) -> dict[str, str]:
    """Every pack's files."""
    files: dict[str, str] = {}
    for pack in packs().values():
        files.update(render_pack(pack, config))
    return files
