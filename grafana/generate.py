#!/usr/bin/env python3
"""Regenerate the repository's generated files from pipeline_exporter/mixin with its default config.

Writes alerts/recording-rules.yml, alerts/pipeline-alerts.yml, grafana/dashboards/<uid>.json,
deploy/kubernetes/mixin/<pack>/ (PrometheusRules and dashboard ConfigMaps) and
the thresholds table in docs/alerting.md. ``--check`` writes nothing and exits 1 on any drift
(tests/dashboards and tests/alerts run it). For your own job name and URLs use
``pipeline-exporter mixin --job NAME --grafana-url URL --out DIR`` instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline_exporter.mixin import DEFAULT, render  # noqa: E402
from pipeline_exporter.mixin.cli import drift, write  # noqa: E402
from pipeline_exporter.mixin.docs import splice, thresholds_table  # noqa: E402
from pipeline_exporter.mixin.kubernetes import render_all as render_kubernetes  # noqa: E402
from pipeline_exporter.mixin.kubernetes import stray  # noqa: E402
from pipeline_exporter.mixin.packs import render_all as render_packs  # noqa: E402

ALERTING_DOC = Path("docs") / "alerting.md"


def documented(root: Path) -> str:
    """docs/alerting.md with the thresholds table of the default config."""
    return splice((root / ALERTING_DOC).read_text(encoding="utf-8"), thresholds_table(DEFAULT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if a committed file differs from the generated one")
    parser.add_argument("--root", type=Path, default=REPO,
                        help="the repository to write into or check (default: this one)")
    args = parser.parse_args(argv)
    files = {**render(DEFAULT), **render_packs(DEFAULT)}  # the other packs' under alerts/packs/, grafana/packs/
    files.update(render_kubernetes(DEFAULT))  # deploy/kubernetes/mixin/<pack>/, from the same text
    doc = documented(args.root)
    if args.check:
        problems = drift(args.root, files) + stray(args.root, files)
        if (args.root / ALERTING_DOC).read_text(encoding="utf-8") != doc:
            problems.append(f"{args.root / ALERTING_DOC}: the thresholds table differs from the rules")
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print(f"{len(problems)} generated file(s) out of date: run python grafana/generate.py",
                  file=sys.stderr)
        return 1 if problems else 0
    write(args.root, files)
    (args.root / ALERTING_DOC).write_text(doc, encoding="utf-8")
    print(f"wrote {len(files)} files and the thresholds table of {ALERTING_DOC} under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
