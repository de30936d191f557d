"""Typed pack parameters: a pack declares each parameter's type, and every value (the pack's
default, the config file's override) is checked against it at start, so a query is never bound
NaN, an infinity or a value of the wrong kind.

``name: {type: duration, default: 1d, help: ...}`` declares one; a bare ``name: 42`` still works,
its type inferred (integer, number, string or list). Types: number (finite), integer, duration
(a Prometheus duration such as ``1m30s`` or seconds, bound as seconds), string, list (of finite
numbers or strings, bound expanding: ``WHERE status IN :statuses``). A number, integer or duration
may declare ``min`` and ``max``, both inclusive (a duration's as durations): the default and every
override must lie within them.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline_exporter import durations
from pipeline_exporter.model import PARAMETER_TYPES, RESERVED_PARAMETERS, ParameterSpec
from pipeline_exporter.validation import IDENTIFIER, Node, kind

DECLARATION_KEYS = {"type", "default", "help", "min", "max"}
BOUNDED_TYPES = ("number", "integer", "duration")


def read_parameters(node: Node) -> dict[str, ParameterSpec]:
    """A pack's ``parameters:`` block, each checked against its type."""
    specs = {}
    for name in list(node.data):
        if not isinstance(name, str) or not IDENTIFIER.match(name) or name in RESERVED_PARAMETERS:
            raise node.fail(str(name), f"parameter names are identifiers other than {', '.join(RESERVED_PARAMETERS)}")
        raw = node.get(name)
        if isinstance(raw, dict):
            declared = node.mapping(name)
            ptype = declared.required_string("type")
            if ptype not in PARAMETER_TYPES:
                raise declared.fail("type", f"must be one of {', '.join(PARAMETER_TYPES)}, got {ptype!r}")
            low, high = (_limit(declared, key, ptype) for key in ("min", "max"))
            if low is not None and high is not None and low > high:
                raise declared.fail("max", f"must be at least min ({declared.get('min')}), got {declared.get('max')}")
            default = bound(declared, "default", ptype, declared.get("default", required=True), low, high)
            specs[name] = ParameterSpec(name=name, type=ptype, default=default, help=declared.string("help", ""),
                                        min=low, max=high)
            declared.done()
        else:
            ptype = inferred_type(node, name, raw)
            specs[name] = ParameterSpec(name=name, type=ptype, default=bound(node, name, ptype, raw))
    node.done()
    return specs


def inferred_type(node: Node, name: str, value: Any) -> str:
    """The type of a bare value: integer, number, string or list."""
    if value is None:
        raise node.fail(name, "needs a value, or a declaration {type: ..., default: ...}")
    if isinstance(value, bool):
        raise node.fail(name, "true/false is not a parameter type (number, integer, duration, string, "
                              "list): use 1 or 0")
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    raise node.fail(name, f"must be a number, a string, a list or a declaration {{type, default}}, got {kind(value)}")


def _limit(node: Node, key: str, ptype: str) -> float | None:
    """A declaration's ``min`` or ``max``, as its type binds it (a duration in seconds)."""
    raw = node.get(key)
    if raw is None:
        return None
    if ptype not in BOUNDED_TYPES:
        raise node.fail(key, f"only a {', '.join(BOUNDED_TYPES)} parameter has a {key}, this one is a {ptype}")
    value: float = bound(node, key, "number" if ptype == "integer" else ptype, raw)
    return value


def bound(node: Node, key: str, ptype: str, value: Any, low: float | None = None, high: float | None = None) -> Any:
    """``value`` as bound into SQL for a parameter of type ``ptype``, within the inclusive ``low``
    and ``high`` where given; the node's error otherwise."""
    try:
        out = _bound(ptype, value)
    except ValueError as exc:
        raise node.fail(key, str(exc)) from None
    unit = "s" if ptype == "duration" else ""
    if low is not None and out < low:
        raise node.fail(key, f"must be at least {low:g}{unit}, got {value}")
    if high is not None and out > high:
        raise node.fail(key, f"must be at most {high:g}{unit}, got {value}")
    return out


def as_type(ptype: str, value: Any) -> Any:
    """``value`` as a parameter of type ``ptype`` takes it (a duration in seconds); ValueError saying
    what is wrong otherwise. The mixin checks its thresholds with it too: one type system."""
    return _bound(ptype, value)


def _bound(ptype: str, value: Any) -> Any:
    if value is None:
        raise ValueError(f"needs a value ({ptype})")
    if ptype == "duration":
        seconds = durations.parse(value)
        return int(seconds) if seconds.is_integer() else seconds  # whole seconds bind as before
    if ptype == "list":
        if not isinstance(value, list) or not value:
            raise ValueError(f"must be a non-empty list, got {kind(value)}")
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                raise ValueError(f"item {i} must be a number or a string, got {kind(item)}")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"item {i} must be a finite number, got {item}")
        return list(value)
    if ptype == "string":
        if not isinstance(value, str):
            raise ValueError(f"must be a string, got {kind(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be {'an integer' if ptype == 'integer' else 'a number'}, got {kind(value)}")
    if ptype == "integer" and not isinstance(value, int):
        raise ValueError(f"must be an integer, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value}")
    return value
