"""Reading config files: YAML with ``!env``/``!file`` tags, and ``Node``, the validator every
config file goes through (the config, packs, the web config), so every problem names the file,
the key path and what is wrong."""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any, overload

import yaml

from pipeline_exporter import durations
from pipeline_exporter.errors import ConfigError

METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
IDENTIFIER = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


try:  # libyaml's parser, several times faster on the packs' many files; the same documents
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeLoader  # type: ignore[assignment]


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's parser where PyYAML has it."""
    return yaml.load(text, Loader=SafeLoader)


class _Loader(SafeLoader):
    """SafeLoader with ``!env NAME`` and ``!file PATH`` tags for secrets."""


def _make_loader(base_dir: Path, secrets: bool = True) -> type[_Loader]:
    loader: type[_Loader] = type("BoundLoader", (_Loader,), {})
    if not secrets:
        def refuse(ldr: yaml.SafeLoader, node: yaml.Node) -> str:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.tag} is for the config file: a pack reads no environment variables or files "
                "(a secret must never reach a label)", node.start_mark)

        loader.add_constructor("!env", refuse)
        loader.add_constructor("!file", refuse)
        return loader

    def env_tag(ldr: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
        name = str(ldr.construct_scalar(node))
        if name not in os.environ:
            raise yaml.constructor.ConstructorError(
                None, None, f"environment variable {name!r} (from !env) is not set", node.start_mark)
        return os.environ[name]

    def file_tag(ldr: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
        path = base_dir / str(ldr.construct_scalar(node))
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {path} (from !file): {exc.strerror}", node.start_mark) from None
        except UnicodeDecodeError as exc:  # never the bytes themselves: the file holds a secret
            raise yaml.constructor.ConstructorError(
                None, None, f"{path} (from !file) is not UTF-8 text (byte {exc.start})", node.start_mark) from None

    loader.add_constructor("!env", env_tag)
    loader.add_constructor("!file", file_tag)
    return loader


def read_text(path: Path, what: str) -> str:
    """A config file's text; a missing file or one that is not UTF-8 is a ConfigError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read {what}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ConfigError(str(path), f"line {line}", f"{what} is not UTF-8 text (byte {exc.start} of the file; "
                          "save it as UTF-8)") from None


def read_yaml(text: str, origin: str, base_dir: Path, secrets: bool = True) -> Any:
    """Parse YAML text, turning syntax and tag errors into a ConfigError; ``secrets`` allows the
    ``!env`` and ``!file`` tags (config files, not packs)."""
    try:
        return yaml.load(text, Loader=_make_loader(base_dir, secrets))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(origin, where, f"invalid YAML: {problem}") from None


class Node:
    """A mapping being validated: typed getters, key paths in every error, unknown keys refused.

    Every config file the exporter reads (config, packs, the web config) is read through it.
    """

    def __init__(self, data: Any, origin: str, path: str):
        if not isinstance(data, dict):
            raise ConfigError(origin, path or "(top level)", f"must be a mapping, got {kind(data)}")
        self.data: dict[Any, Any] = data
        self.origin, self.path = origin, path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.origin, self.key(name), problem)

    def get(self, name: str, default: Any = None, required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                typo = difflib.get_close_matches(name, [k for k in self.data if isinstance(k, str)], n=1, cutoff=0.75)
                if typo:  # `cert_fle: x` is a misspelt key, the more useful thing to say than "cert_file missing"
                    raise self.fail(typo[0], f"unknown key (did you mean {name}?)")
                raise self.fail(name, "is required")
            return default
        return self.data[name]

    @overload
    def string(self, name: str) -> str | None: ...

    @overload
    def string(self, name: str, default: str) -> str: ...

    @overload
    def string(self, name: str, default: None) -> str | None: ...

    def string(self, name: str, default: str | None = None) -> str | None:
        """An optional string (``default`` when absent)."""
        value = self.get(name, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {kind(value)}")
        return value

    def required_string(self, name: str) -> str:
        """A string that must be there."""
        value = self.get(name, required=True)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, got {kind(value)}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        """A number at least ``minimum`` (``default`` when absent)."""
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, got {kind(value)}")
        if not math.isfinite(value):
            raise self.fail(name, f"must be a finite number, got {value}")
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum:g}, got {value}")
        return float(value)

    def integer(self, name: str, default: int, minimum: int = 0) -> int:
        value = self.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, got {kind(value)}")
        if value < minimum:
            raise self.fail(name, f"must be at least {minimum}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {kind(value)}")
        return value

    def duration(self, name: str, default: float) -> float:
        value = self.get(name, default)
        try:
            return durations.parse_positive(value)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None

    def mapping(self, name: str) -> Node:
        return Node(self.get(name, {}), self.origin, self.key(name))

    def sequence(self, name: str, default: list[Any] | None = None) -> list[Any]:
        value = self.get(name, default if default is not None else [])
        if not isinstance(value, list):
            raise self.fail(name, f"must be a list, got {kind(value)}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            close = difflib.get_close_matches(str(unknown[0]), sorted(self.seen), n=1, cutoff=0.75)
            raise self.fail(str(unknown[0]), "unknown key" + (
                f" (did you mean {close[0]}?)" if close else
                f" (known keys here: {', '.join(sorted(self.seen))})" if self.seen else ""))


def kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            type(None): "nothing"}.get(type(value), type(value).__name__)
