"""Structured logs in logfmt or JSON, with the fields a record carries in ``extra``."""

from __future__ import annotations

import json
import logging
import time

STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn", logging.ERROR: "error",
          logging.CRITICAL: "error"}


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str):
        super().__init__()
        self.fmt = fmt

    def format(self, record: logging.LogRecord) -> str:
        # Millisecond timestamps and Go's level names, as Prometheus's own exporters write them.
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        fields = {"ts": stamp, "level": LEVELS.get(record.levelno, record.levelname.lower()),
                  "logger": record.name, "msg": record.getMessage()}
        fields.update({k: v for k, v in vars(record).items() if k not in STANDARD})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self.fmt == "json":
            return json.dumps(fields, default=str)
        return " ".join(f"{key}={_logfmt(value)}" for key, value in fields.items())


def _logfmt(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' ="\n\\'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def setup(level: str = "info", fmt: str = "logfmt") -> None:
    """Send the exporter's logs to stderr in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel({"warn": "WARNING"}.get(level, level.upper()))
