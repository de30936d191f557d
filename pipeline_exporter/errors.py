"""The exporter's error types: one small hierarchy, caught at the edges.

- ``ConfigError``: a configuration is invalid; it names the origin (file or flag), the key path and
  the problem. The CLI reports it and exits 2. Its subclasses say which setting.
- ``CollectionError``: a query or source failed while collecting; its ``kind`` (connection, timeout,
  query, source) goes to the logs and the status page. The scheduler records it; it never stops
  the exporter.
- ``DemoTargetNotEmpty``: ``demo-db`` refused to overwrite data.
"""

from __future__ import annotations

from typing import Literal

CollectionKind = Literal["connection", "timeout", "query", "source"]


class ExporterError(Exception):
    """Base class of every error the exporter raises on purpose."""


class ConfigError(ExporterError):
    """A configuration or pack file is invalid; the message names the file, key path and problem."""

    def __init__(self, origin: str, key: str, problem: str):
        self.origin = origin
        self.key = key
        self.problem = problem
        where = f"{origin}: {key}" if key else origin
        super().__init__(f"{where}: {problem}")


class DatabaseURLError(ConfigError):
    """The database URL is malformed, names an unsupported database, or its driver is missing."""

    def __init__(self, problem: str):
        super().__init__("database URL", "", problem)


class ListenAddressError(ConfigError):
    """``--web.listen-address`` is not ``host:port``."""

    def __init__(self, problem: str):
        super().__init__("--web.listen-address", "", problem)


class CollectionError(ExporterError):
    """A query or source failed; ``kind`` is connection, timeout, query or source."""

    def __init__(self, kind: CollectionKind, message: str):
        self.kind: CollectionKind = kind
        super().__init__(message)


class DemoTargetNotEmpty(ExporterError):
    """demo-db refused to overwrite an existing SQLite file or pipeline tables that hold rows (no force)."""
