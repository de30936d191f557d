"""``pipeline-exporter mixin``: render every pack's rules and dashboards for one setup, or check a copy."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pipeline_exporter import flags, packloader, validation
from pipeline_exporter.config import load_config
from pipeline_exporter.errors import ConfigError
from pipeline_exporter.mixin import kubernetes, own
from pipeline_exporter.mixin.config import MixinConfig, load
from pipeline_exporter.mixin.render import Pack, documents, known_parameters, load_pack, packs, render_pack
from pipeline_exporter.mixin.render.format import check

EXIT_CONFIG = 2


def parser() -> argparse.ArgumentParser:
    parser = flags.Parser(
        prog="pipeline-exporter mixin",
        description="Render every pack's alerting and recording rules and Grafana dashboards (declared "
                    "in pipeline_exporter/packs/<name>/, docs/packs/format.md) for your own scrape job, "
                    "URLs and thresholds. `--out .` in the repository regenerates everything committed.")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder to write into (alerts/, grafana/dashboards/, grafana/packs/ are created)")
    parser.add_argument("--config", type=Path,
                        help="YAML file: job, prometheus_job, alertmanager_job, grafana_url, runbook_url, timezone "
                             "and parameters: {name: value} overriding any pack's thresholds")
    parser.add_argument("--exporter-config", dest="exporter_config", type=Path,
                        help="the exporter's config file, checked as the exporter checks it: its parameters: "
                             "override the packs' thresholds of the same name (names only the SQL uses are "
                             "left to the exporter)")
    parser.add_argument("--job", help='the exporter\'s scrape job_name (default "pipeline-exporter")')
    parser.add_argument("--prometheus-job", dest="prometheus_job",
                        help='the job scraping Prometheus itself (default "prometheus")')
    parser.add_argument("--alertmanager-job", dest="alertmanager_job",
                        help='the job scraping Alertmanager (default "alertmanager")')
    parser.add_argument("--grafana-url", dest="grafana_url",
                        help="Grafana as operators reach it, for notification links (default: none, the "
                             "annotations carry the dashboard's path and Alertmanager's templates prepend the "
                             "address set once in alertmanager/templates/grafana.tmpl)")
    parser.add_argument("--runbook-url", dest="runbook_url",
                        help="where docs/runbooks.md is published; alerts link to its sections (and the "
                             "packs' pages beside it)")
    parser.add_argument("--timezone",
                        help='the dashboards\' time zone, where per-day bars start: "utc" (default), "browser", '
                             '"" (each viewer\'s Grafana preference) or an IANA name such as Europe/Paris')
    parser.add_argument("--llm-budget", dest="llm_budget", type=float,
                        help="monthly LLM budget in USD, used where the exporter reports none "
                             "(parameter llm_monthly_budget_usd)")
    parser.add_argument("--pack", action="append", default=[],
                        help="render only this pack: a built-in pack's name, a folder of declarations, or "
                             "your own pack file anywhere (what it does not declare is derived from its "
                             f"metrics; docs/packs/derived.md) (repeatable; built in: {', '.join(packs())})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the files in --out differ from the rendered ones")
    kubernetes.add_arguments(parser)
    return parser


def write(out: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def drift(out: Path, files: Mapping[str, str]) -> list[str]:
    """One unified diff (or note) per file that differs, is missing or is not rendered."""
    problems = []
    for name, wanted in files.items():
        path = out / name
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != wanted:
            diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(),
                                        f"{path} (on disk)", f"{path} (rendered)", lineterm="", n=1)
            problems.append("\n".join(list(diff)[:40]))
    # Files in the folders the renderer writes that it did not render (a removed dashboard).
    folders = {(Path(name).parent, Path(name).suffix) for name in files if not name.endswith(".md")}
    for folder, suffix in sorted(folders):
        for path in sorted((out / folder).glob(f"*{suffix}")):
            if path.relative_to(out).as_posix() not in files:
                problems.append(f"{path}: not rendered by pipeline-exporter mixin")
    return problems


def _exporter_parameters(path: Path, known: set[str]) -> dict[str, Any]:
    """The exporter config's ``parameters:`` that some pack's alerts declare, as written. The file is
    first read as the exporter reads it (``!env``, ``!file``, every name and type checked), so a
    config the mixin takes is one the exporter takes."""
    load_config(path)
    text = validation.read_text(path, "config file")
    document = validation.read_yaml(text, str(path), path.resolve().parent) or {}
    section = document.get("parameters") or {} if isinstance(document, Mapping) else {}
    return {str(name): value for name, value in section.items() if name in known}


def _selected(names: list[str]) -> dict[str, Pack]:
    builtin = packs()
    if not names:
        return builtin
    out = {}
    for name in names:
        if name in builtin:
            out[name] = builtin[name]
        elif own.is_own(name):
            # A pack file (or folder with a pack.yaml) of the user's: declared or derived.
            pack = own.load(name)
            out[pack.name] = pack
        elif Path(name).is_dir():
            pack = load_pack(Path(name))
            out[pack.name] = pack
        else:
            raise ConfigError("--pack", name, f"neither a built-in pack ({', '.join(builtin)}), a pack file nor a "
                              "folder")
    return out


def _check(parameters: Mapping[str, Any], selected: Mapping[str, Pack], origin: str,
           key: Callable[[str], str]) -> None:
    """Each value against every pack declaring it, here where the error can name where it came from
    (merged into the mixin config, it would be blamed on --config)."""
    for pack in {**packs(), **selected}.values():
        for name, value in parameters.items():
            if name in pack.parameters:
                check(pack.parameters[name], value, origin, key(name))


def configure(args: argparse.Namespace, selected: Mapping[str, Pack]) -> MixinConfig:
    """The mixin config from the flags, with every parameter name checked against the packs."""
    known = known_parameters(packs()) | known_parameters(selected)
    parameters = _exporter_parameters(args.exporter_config, known) if args.exporter_config else {}
    _check(parameters, selected, str(args.exporter_config), lambda name: f"parameters.{name}")
    if args.llm_budget is not None:
        parameters["llm_monthly_budget_usd"] = args.llm_budget
        _check({"llm_monthly_budget_usd": args.llm_budget}, selected, "command line", lambda name: "--llm-budget")
    config = load(args.config, parameters, job=args.job, prometheus_job=args.prometheus_job,
                  alertmanager_job=args.alertmanager_job, grafana_url=args.grafana_url,
                  runbook_url=args.runbook_url, timezone=args.timezone)
    for name in config.parameters:
        if name not in known:
            raise ConfigError(config.origin, f"parameters.{name}",
                              f"no pack declares this parameter; known: {', '.join(sorted(known))}")
    return config


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        selected = _selected(args.pack)
        config = configure(args, selected)
        files: dict[str, str] = {}
        for pack in selected.values():
            files.update(render_pack(pack, config))
        files.update(own.derived_files(args.pack, packloader.names()))
        present = {name: pack for name, pack in selected.items()
                   if pack.output("docs") and (args.out / pack.output("docs")).exists()}
        if present:
            files.update(documents(args.out, config, present))
        # deploy/kubernetes/mixin/<pack>/ from the same rendering, with --kubernetes (docs/kubernetes.md)
        files.update(kubernetes.from_args(args, selected, config))
    except ConfigError as exc:
        print(f"pipeline-exporter mixin: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        problems = drift(args.out, files)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"{len(problems)} file(s) differ from `pipeline-exporter mixin`'s output: run "
                  f"pipeline-exporter mixin --out {args.out}", file=sys.stderr)
        return 1 if problems else 0
    try:
        write(args.out, files)
    except OSError as exc:
        # A folder that cannot be made or written: one line, not the chain of the failed mkdir.
        print(f"pipeline-exporter mixin: --out {args.out}: cannot write: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"wrote {len(files)} files to {args.out}: " + ", ".join(sorted(files)))
    return 0
