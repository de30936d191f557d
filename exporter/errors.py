"""The exporter's error types: one small hierarchy, caught at the edges."""

from __future__ import annotations


class ExporterError(Exception):
    """Base class of every error the exporter raises on purpose."""


class ConfigError(ExporterError):
    """A configuration or pack file is invalid; the message names the file, key path and problem."""

    def __init__(self, source: str, path: str, problem: str):
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {problem}")


class QueryError(ExporterError):
    """A query or source failed; ``kind`` is connection, timeout, query or source."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


class DemoTargetNotEmpty(ExporterError):
    """demo-db refused to overwrite an existing SQLite file or pipeline tables that hold rows (no force)."""
