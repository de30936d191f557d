"""The exporter's flags, Prometheus style: dotted names, each also from the environment.

Every flag ``--a.b-c`` can be set as ``PIPELINE_EXPORTER_A_B_C``; a flag on the command line wins
over the environment, which wins over the config file and the default. The first names of the
project (``--database-url``, ``--check-config``, ``--coverage-file``, ``--e2e-report``) stay as
aliases. Boolean flags take ``--no-`` to turn off (``--no-collector.host``) and, from the
environment, true/false, 1/0, yes/no.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pipeline_exporter import __version__, durations, packloader

ENV_PREFIX = "PIPELINE_EXPORTER_"
COLLECTORS = ("host", "database-size", "database-integrity", "coverage", "e2e")


def seconds(text: str) -> float:
    """A flag's duration above zero (``10``, ``2.5``, ``500ms``, ``10s``, ``1m30s``): argparse's error."""
    try:
        return durations.parse_positive(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def boolean(text: str) -> bool:
    words = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
    if text.strip().lower() not in words:
        raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")
    return words[text.strip().lower()]


def listen_address(text: str) -> str:
    """``host:port`` with a port 0..65535 (``:9333`` means every interface, ``[::1]:9333`` IPv6)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"must look like :9333 or 127.0.0.1:9333, got {text!r}")
    if int(port) > 65535:
        raise argparse.ArgumentTypeError(f"the port must be 0..65535, got {port}")
    return text


def telemetry_path(text: str) -> str:
    if not text.startswith("/") or text in ("/", "/-/healthy", "/-/ready", "/-/reload"):
        raise argparse.ArgumentTypeError(f"must be a path of its own such as /metrics, got {text!r}")
    return text


@dataclass(frozen=True)
class Flag:
    """One flag: its name, old names, where it lands, how it parses, its default and its help."""

    name: str
    dest: str
    help: str
    parse: Callable[[str], Any] = str
    default: Any = None
    aliases: tuple[str, ...] = ()
    boolean: bool = False
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.replace(".", "_").replace("-", "_").upper()


FLAGS: tuple[Flag, ...] = (
    Flag("config.file", "config_file", "YAML config: packs, parameters, schedules, collectors, const_labels "
         "(default: the built-in pack)", Path),
    Flag("config.check", "check_config", "validate the config (and every query's columns, if the database "
         "answers) and exit 0 or 2", boolean=True, default=False, aliases=("check-config",)),
    Flag("database.url", "database_url", "SQLAlchemy URL of the pipeline database (default sqlite:///db/sites.db)",
         aliases=("database-url",)),
    Flag("pack", "pack", f"run one pack (a built-in one: {', '.join(packloader.names())}; or a pack file or folder) "
         "instead of the config file's packs:", str),
    Flag("web.listen-address", "listen", "address to serve on", listen_address, default=":9333"),
    Flag("web.telemetry-path", "telemetry_path", "path of the metrics", telemetry_path, default="/metrics"),
    Flag("web.config.file", "web_config_file", "exporter-toolkit web config: TLS, basic auth, HTTP headers "
         "(reread on SIGHUP)", Path),
    Flag("web.enable-lifecycle", "enable_lifecycle", "accept POST /-/reload to reload the config",
         boolean=True, default=False),
    Flag("web.read-timeout", "read_timeout", "time a client has to send its whole request, TLS handshake "
         "included", seconds, default=10.0),
    Flag("web.write-timeout", "write_timeout", "time a client has to take the whole answer", seconds, default=30.0),
    Flag("web.max-connections", "max_connections", "connections open at once (an idle one holds no thread); "
         "past it an idle keep-alive connection is closed, else the newcomer gets 503", positive_int, default=1024),
    Flag("web.max-requests", "max_requests",
         "requests handled at once by request threads (a cached /metrics page needs none); more get 503",
         positive_int, default=40),
    Flag("collector.coverage.file", "coverage", "Istanbul json-summary (default coverage/coverage-summary.json; "
         "missing there = not in use)", Path, aliases=("coverage-file",)),
    Flag("collector.e2e.file", "e2e_report", "JUnit XML of the end-to-end tests (default "
         "test-results/e2e-junit.xml; missing there = not in use)", Path, aliases=("e2e-report",)),
    *(Flag(f"collector.{name}", f"collector_{name.replace('-', '_')}", f"the {name} source (default: on, or "
           "as the config file's collectors: says)", boolean=True) for name in COLLECTORS),
    Flag("log.level", "log_level", "debug, info, warn or error", default="info",
         choices=("debug", "info", "warn", "error")),
    Flag("log.format", "log_format", "logfmt or json", default="logfmt", choices=("logfmt", "json")),
)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem, a close flag name if there is one, and "see --help"
    (argparse's own error prints the whole usage block first, burying the one useful line). No
    abbreviations, as in Prometheus's flags: ``--site`` is a typo to point out, not ``--sites``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}{self.suggestion(message)} (see {self.prog} --help)\n")

    def suggestion(self, message: str) -> str:
        """``; did you mean --x?`` for the first unknown flag close to a known one."""
        known = [name for name in self._option_string_actions if name.startswith("--")]
        for word in re.findall(r"(--[\w.-]+)", message.partition(":")[2] if "unrecognized" in message else ""):
            close = difflib.get_close_matches(word, known, n=1, cutoff=0.75)
            if close:
                return f"; did you mean {close[0]}?"
        return ""


def run_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pipeline-exporter",
        description="Prometheus exporter for the 333 Method pipeline database. Every flag can also be set "
                    f"from the environment as {ENV_PREFIX}<FLAG> (e.g. {FLAGS[2].env}). Subcommands: demo-db "
                    "PATH (a demo database), backfill (counter history for promtool), mixin (rules and "
                    "dashboards for your setup).")
    for flag in FLAGS:
        names = [f"--{flag.name}", *(f"--{alias}" for alias in flag.aliases)]
        text = f"{flag.help} (env {flag.env}" + (f"; default {flag.default}" if flag.default not in (None, False)
                                                  else "") + ")"
        if flag.boolean:
            parser.add_argument(*names, dest=flag.dest, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        else:
            parser.add_argument(*names, dest=flag.dest, type=flag.parse, default=None, help=text,
                                choices=flag.choices or None, metavar=flag.dest.upper())
    parser.add_argument("--version", action="version", version=f"pipeline-exporter {__version__}")
    return parser


class FlagError(Exception):
    """A flag's environment variable holds a value the flag does not take."""


def parse_run_flags(argv: list[str], environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Flags from the command line, else from the environment, else None for the config file's say
    (collectors) or the default."""
    environ = os.environ if environ is None else environ
    args = run_parser().parse_args(argv)
    for flag in FLAGS:
        if getattr(args, flag.dest) is not None:
            continue
        raw = environ.get(flag.env)
        if raw is not None and raw != "":
            try:
                value = boolean(raw) if flag.boolean else flag.parse(raw)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise FlagError(f"{flag.env}={raw!r}: {exc}") from None
            if flag.choices and value not in flag.choices:
                raise FlagError(f"{flag.env}={raw!r}: must be one of {', '.join(flag.choices)}")
            setattr(args, flag.dest, value)
        elif not flag.name.startswith("collector.") or flag.name.endswith(".file"):
            setattr(args, flag.dest, flag.default)
    return args


def collector_overrides(args: argparse.Namespace) -> dict[str, bool]:
    """The collectors a flag or the environment turned on or off (the rest: as the config says)."""
    return {name.replace("-", "_"): value for name in COLLECTORS
            if (value := getattr(args, f"collector_{name.replace('-', '_')}")) is not None}
