"""Where things are: the one definition of the repository's folder for every suite."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DDL = REPO / "pipeline_exporter" / "packs" / "method333" / "schema" / "sqlite.sql"
