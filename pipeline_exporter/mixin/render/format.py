"""The declaration format (docs/packs/format.md): reading a pack's files, its parameters, placeholders."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pipeline_exporter import durations, validation
from pipeline_exporter.errors import ConfigError
from pipeline_exporter.mixin.config import MixinConfig, seconds
from pipeline_exporter.parameters import as_type

FORMATS = (1,)
TYPES = ("number", "integer", "duration", "string", "list")
PLACEHOLDER = re.compile(r"%%\{|%\{(\w+)(?::([^}|]*))?((?:\|\w+)*)\}")
SPOKEN = {"15m": "15 minutes", "1h": "hour", "24h": "24 hours", "7d": "7 days"}


def percent(ratio: float) -> str:
    """0.05 -> ``5 %``, 0.001 -> ``0.1 %`` (how the docs and annotations write levels)."""
    return f"{ratio * 100:g} %"


UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}


def spoken(span: str) -> str:
    """How prose names a window: ``1h`` -> ``hour`` ("the last hour"), ``24h`` -> ``24 hours``."""
    match = re.fullmatch(r"(\d+)([smhdw])", span)
    if span in SPOKEN or not match:
        return SPOKEN.get(span, span)
    return f"{match[1]} {UNIT_WORDS[match[2]]}" + ("" if match[1] == "1" else "s")


def period(span: str) -> str:
    """A per-period panel's words: ``24h`` -> ``per day``, ``15m`` -> ``per 15 minutes``."""
    return {"24h": "per day", "7d": "per week"}.get(span, f"per {spoken(span)}")


def interval(span: str) -> str:
    """A window as Grafana's query interval: whole days in days (``24h`` -> ``1d``)."""
    total = seconds(span)
    return f"{total // 86400}d" if total % 86400 == 0 else span


def human(duration: str) -> str:
    """``2h`` -> ``2 hours``, ``90m`` -> ``90 minutes``, ``1h`` -> ``1 hour``."""
    total = seconds(duration)
    if total % 3600 == 0:
        return "1 hour" if total == 3600 else f"{total // 3600} hours"
    return f"{total // 60} minutes"


def times(factor: float) -> str:
    """0.5 -> ``half``, 2 -> ``twice``, 3 -> ``3 times`` (a factor in prose)."""
    return {0.5: "half", 2: "twice"}.get(factor, f"{factor:g} times")


def _whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


# What ``%{name|filter}`` may pass a parameter through (they chain: ``%{pace|seconds|half}``).
FILTERS: dict[str, Callable[[Any], Any]] = {
    "percent": percent, "spoken": spoken, "period": period, "interval": interval, "seconds": seconds,
    "human": human, "times": times, "hours": lambda value: int(value) // 3600,
    "minutes": lambda value: int(value) // 60, "half": lambda value: _whole(value / 2)}


def read(path: Path) -> dict[str, Any]:
    """One declaration file: a mapping with a known ``format``."""
    try:
        document = validation.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), "", f"cannot read: {exc}") from None
    if not isinstance(document, dict):
        raise ConfigError(str(path), "", "must be a mapping")
    version = document.get("format")
    if version not in FORMATS:
        raise ConfigError(str(path), "format", f"must be one of {', '.join(map(str, FORMATS))}, got {version!r}")
    return document


@dataclass(frozen=True)
class Parameter:
    """One of a pack's typed parameters (a threshold, a window, a guard)."""

    name: str
    type: str
    default: Any
    help: str = ""
    choices: tuple[Any, ...] = ()
    min: Any = None  # inclusive bounds, of the parameter's type (a duration as a duration)
    max: Any = None


def infer(value: Any, origin: str = "", key: str = "") -> str:
    """The type a bare parameter value declares, as the exporter infers it (``parameters.py``); a
    string PromQL reads as a duration (``15m``, ``1m30s``) is a duration. None is an optional
    string parameter not set."""
    if value is None:
        return "string"
    if isinstance(value, str):
        try:
            durations.parse_promql(value)
        except ValueError:
            return "string"
        return "duration"
    if isinstance(value, bool):
        raise ConfigError(origin, key, "true/false is not a parameter type (number, integer, duration, string, "
                                       "list): use 1 or 0, or declare {type: ..., default: ...}")
    if isinstance(value, (int, float, list)):
        return {int: "integer", float: "number", list: "list"}[type(value)]
    raise ConfigError(origin, key, f"must be a number, a string, a list or a declaration {{type, default}}, "
                                   f"got {type(value).__name__}")


def parameter(name: str, spec: Any, origin: str) -> Parameter:
    if not isinstance(spec, Mapping):
        return Parameter(name, infer(spec, origin, f"parameters.{name}"), spec)
    kind = spec.get("type") or infer(spec.get("default"), origin, f"parameters.{name}.default")
    if kind not in TYPES:
        raise ConfigError(origin, f"parameters.{name}.type", f"must be one of {', '.join(TYPES)}, got {kind!r}")
    param = Parameter(name, kind, spec.get("default"), str(spec.get("help", "")), tuple(spec.get("choices", ())))
    for key in ("min", "max"):
        if spec.get(key) is not None:
            if kind not in ("number", "integer", "duration"):
                raise ConfigError(origin, f"parameters.{name}.{key}",
                                  f"only a number, integer or duration parameter has a {key}, this one is a {kind}")
            plain = Parameter(name, "number" if kind == "integer" else kind, None)  # no bounds, no choices
            limit = check(plain, spec[key], origin, f"parameters.{name}.{key}")
            param = replace(param, **{key: limit})
    if param.min is not None and param.max is not None and _size(param, param.min) > _size(param, param.max):
        raise ConfigError(origin, f"parameters.{name}.max",
                          f"must be at least min ({_show(param.min)}), got {_show(param.max)}")
    return replace(param, default=check(param, param.default, origin, f"parameters.{name}.default"))


def _show(value: Any) -> str:
    """A bound or value as written (``0``, not ``0.0``)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _size(param: Parameter, value: Any) -> float:
    """A value of the parameter's type as a number to compare (a duration in seconds)."""
    return float(seconds(value)) if param.type == "duration" else float(value)


def check(param: Parameter, value: Any, origin: str, key: str) -> Any:
    """``value`` as the parameter's type; None stays None (an optional parameter not set)."""
    if value is None:
        return None
    kind = param.type
    try:
        if kind == "duration":
            durations.parse_promql(value)  # it goes into PromQL (a range, a for:) as written
        else:
            value = as_type(kind, value)  # the exporter's checks (parameters.py): one type system
    except ValueError as exc:
        raise ConfigError(origin, key, str(exc)) from None
    if kind == "number":
        value = float(value)  # rendered as written with :g, 5 and 5.0 alike
    if param.min is not None and _size(param, value) < _size(param, param.min):
        raise ConfigError(origin, key, f"must be at least {_show(param.min)}, got {_show(value)}")
    if param.max is not None and _size(param, value) > _size(param, param.max):
        raise ConfigError(origin, key, f"must be at most {_show(param.max)}, got {_show(value)}")
    if param.choices and value not in param.choices:
        raise ConfigError(origin, key, f"must be one of {', '.join(map(str, param.choices))}, got {value!r}")
    return value


@dataclass(frozen=True)
class Values:
    """What the placeholders of one pack's declarations become for one config."""

    config: MixinConfig
    parameters: Mapping[str, Any] = field(default_factory=dict)
    origin: str = ""

    def lookup(self, name: str, key: str) -> Any:
        config = self.config
        fixed = {"job": config.selector, "target": f'{config.selector}, instance=~"$instance"',
                 "prometheus_job": f'job="{config.prometheus_job}"',
                 "alertmanager_job": f'job="{config.alertmanager_job}"'}
        if name in fixed:
            return fixed[name]
        if name not in self.parameters:
            raise ConfigError(self.origin, key, f"unknown placeholder %{{{name}}}; parameters: "
                              + (", ".join(sorted(self.parameters)) or "none"))
        return self.parameters[name]

    def text(self, value: str, key: str = "") -> Any:
        """``value`` with its placeholders filled; exactly one placeholder keeps its type."""
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) and not whole.group(2):
            return self._filtered(whole, key)

        def fill(match: re.Match[str]) -> str:
            if match.group(0) == "%%{":
                return "%{"
            item = self._filtered(match, key)
            if match.group(2):
                return format(item, match.group(2))
            return f"{item:g}" if isinstance(item, float) else str(item)

        return PLACEHOLDER.sub(fill, value)

    def _filtered(self, match: re.Match[str], key: str) -> Any:
        item = self.lookup(match.group(1), key)
        for name in filter(None, match.group(3).split("|")):
            if name not in FILTERS:
                raise ConfigError(self.origin, key, f"unknown filter |{name}; known: {', '.join(FILTERS)}")
            item = FILTERS[name](item)
        return item

    def fill(self, data: Any, key: str = "") -> Any:
        """Every string in ``data`` (mappings, lists) with its placeholders filled."""
        if isinstance(data, str):
            return self.text(data, key) if "%{" in data else data
        if isinstance(data, list):
            return [self.fill(item, f"{key}[{index}]") for index, item in enumerate(data)]
        if isinstance(data, dict):
            return {name: self.fill(item, f"{key}.{name}" if key else str(name)) for name, item in data.items()}
        return data


def active(rule: Mapping[str, Any], values: Values) -> bool:
    """A rule's ``if:``/``unless:``: rendered only when the parameter is set (or not)."""
    if "if" in rule and values.lookup(rule["if"], "if") in (None, False):
        return False
    return not ("unless" in rule and values.lookup(rule["unless"], "unless") not in (None, False))
