"""``python -m pipeline_exporter.probe PATH``: ask the running exporter for /-/healthy or /-/ready.

For container health checks and Kubernetes exec probes. It reads the exporter's own flags (its
command line and environment, from /proc/<pid>, PID 1 in a container; else this process's
environment), so it follows ``--web.listen-address`` and the web config: HTTPS when
``tls_server_config`` is set, basic auth from ``--username-file``/``--password-file`` (files, so the
password never shows on a command line). Exit 0 on a 200, else 1, with one line saying why.
"""

from __future__ import annotations

import argparse
import base64
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from pipeline_exporter.errors import ConfigError
from pipeline_exporter.flags import FlagError, parse_run_flags
from pipeline_exporter.webconfig import load_web_config

WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}


def exporter_argv(cmdline: list[str]) -> list[str] | None:
    """The flags of an exporter's command line (``pipeline-exporter ...`` or ``python -m
    pipeline_exporter ...``), or None when it is another program or a subcommand."""
    for i, word in enumerate(cmdline):
        if Path(word).name == "pipeline-exporter":
            rest = cmdline[i + 1:]
        elif word == "-m" and cmdline[i + 1:i + 2] == ["pipeline_exporter"]:
            rest = cmdline[i + 2:]
        else:
            continue
        return None if rest and not rest[0].startswith("-") else rest
    return None


def from_process(pid: int) -> tuple[list[str], dict[str, str], Path] | None:
    """The exporter's flags, environment and working directory from /proc, if ``pid`` is one."""
    proc = Path("/proc") / str(pid)
    try:
        cmdline = proc.joinpath("cmdline").read_bytes().decode(errors="replace").split("\0")
        argv = exporter_argv([word for word in cmdline if word])
        if argv is None:
            return None
        pairs = proc.joinpath("environ").read_bytes().decode(errors="replace").split("\0")
        environ = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        return argv, environ, Path(os.readlink(proc / "cwd"))
    except OSError:
        return None


def target(address: str) -> tuple[str, int]:
    """Where to connect for a listen address: its host, or loopback for a wildcard."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--web.listen-address {address!r} is not HOST:PORT")
    host = WILDCARDS.get(host, host).strip("[]")
    return host, int(port)


def url_and_context(argv: list[str], environ: Mapping[str, str], cwd: Path,
                    cert: Path | None, key: Path | None) -> tuple[str, str, ssl.SSLContext | None]:
    """The base URL, the telemetry path and the TLS context (None for plain HTTP)."""
    flags = parse_run_flags(argv, environ)
    host, port = target(flags.listen)
    shown = f"[{host}]" if ":" in host else host
    context = None
    if flags.web_config_file is not None:
        web = load_web_config(cwd / flags.web_config_file)
        if web.tls is not None:
            # Our own process on loopback: the answer matters here, not the certificate's name.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            if cert is not None:
                context.load_cert_chain(str(cert), str(key) if key else None)
    scheme = "https" if context is not None else "http"
    return f"{scheme}://{shown}:{port}", flags.telemetry_path, context


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline_exporter.probe", description=__doc__)
    parser.add_argument("path", nargs="?", default="/-/healthy",
                        help="/-/healthy (default), /-/ready, or 'metrics' for the telemetry path")
    parser.add_argument("--pid", type=int, default=1, help="the exporter's process id (default 1)")
    parser.add_argument("--username-file", type=Path, help="basic-auth user name, read from this file")
    parser.add_argument("--password-file", type=Path, help="basic-auth password, read from this file")
    parser.add_argument("--client-cert", type=Path, help="client certificate, when the web config requires one")
    parser.add_argument("--client-key", type=Path, help="its key")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds to wait for the answer (default 4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    found = from_process(args.pid)
    exporter_args, environ, cwd = found if found else ([], dict(os.environ), Path.cwd())
    try:
        base, telemetry, context = url_and_context(exporter_args, environ, cwd, args.client_cert, args.client_key)
    except (ConfigError, FlagError, ValueError, OSError, ssl.SSLError, SystemExit) as exc:
        print(f"probe: cannot tell where the exporter listens: {exc}", file=sys.stderr)
        return 1
    url = base + (telemetry if args.path == "metrics" else args.path)
    request = urllib.request.Request(url)
    if args.username_file or args.password_file:
        try:
            user = args.username_file.read_text(encoding="utf-8").strip() if args.username_file else ""
            password = args.password_file.read_bytes().rstrip(b"\r\n") if args.password_file else b""
        except OSError as exc:
            print(f"probe: cannot read the credentials: {exc.filename}: {exc.strerror}", file=sys.stderr)
            return 1
        token = base64.b64encode(user.encode() + b":" + password).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout, context=context) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"probe: {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"probe: {url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
