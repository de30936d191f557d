"""What may be shown of secrets and errors: URLs with their secrets masked, database errors by
class and code only (a server may quote the value that broke a statement)."""

from __future__ import annotations

import re
import sqlite3

SECRET_PARAMETER = re.compile(r"([?&][^=&#]*(?:pass|secret|token)[^=&#]*=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """A database URL with every secret replaced by ***: the password of the user info (up to the
    last ``@`` before the query, so a raw ``@`` in it hides it all) and every parameter whose name
    says pass, secret or token (``password=``, ``sslpassword=``, ...)."""
    scheme, sep, rest = url.partition("://")
    if sep:
        head, mark, query = rest.partition("?")
        userinfo, at, host = head.rpartition("@")
        if at and ":" in userinfo:
            head = userinfo.split(":", 1)[0] + ":***@" + host
        url = f"{scheme}://{head}{mark}{query}"
    return SECRET_PARAMETER.sub(r"\1***", url)


# SQLite's own messages that name only schema objects or states, never a stored value.
SQLITE_SAFE = re.compile(
    r"^(no such (table|column|function): [\w.]{1,64}"
    r"|database is locked|database table is locked|interrupted|file is not a database"
    r"|database disk image is malformed|unable to open database file|not authorized|disk I/O error"
    r"|attempt to write a readonly database|out of memory|authorization denied"
    r'|near "[^"\n]{0,40}": syntax error|incomplete input)$')  # the pack's own SQL, not data
# Fixed words for failures to connect, which drivers report without a code.
CONNECT_PHRASES = (("connection refused", "connection refused"), ("timeout expired", "connect timeout"),
                   ("timed out", "timed out"), ("could not translate host name", "unknown host"),
                   ("name or service not known", "unknown host"), ("authentication failed", "authentication failed"),
                   ("access denied", "authentication failed"), ("server closed the connection", "connection closed"),
                   ("lost connection", "connection lost"), ("can't connect", "cannot connect"),
                   ("no route to host", "no route to host"))


def safe_message(exc: BaseException) -> str:
    """What may be said of a database error: its class and code (SQLSTATE, MySQL error number,
    SQLite result code) and, where it names no value, a fixed phrase. Never the driver's text: a
    server may quote the offending value ('invalid input syntax for type integer: "jane@..."'),
    and that value can be personal data."""
    orig = getattr(exc, "orig", None) or exc
    name = type(orig).__name__
    code, phrase = error_code(orig), None
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    if isinstance(orig, sqlite3.Error):
        phrase = first if SQLITE_SAFE.match(first) else None
    if phrase is None and code is None:
        lowered = str(orig).lower()
        phrase = next((words for needle, words in CONNECT_PHRASES if needle in lowered), None)
    detail = ", ".join(part for part in (code, phrase) if part)
    return f"{name} ({detail})" if detail else name


def error_code(orig: BaseException) -> str | None:
    """SQLSTATE (PostgreSQL), error number (MySQL/MariaDB) or result code name (SQLite), if any."""
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and not isinstance(orig, sqlite3.Error):
        return f"MySQL error {args[0]}"  # PyMySQL: (errno, message)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate:
        return f"SQLSTATE {sqlstate}"
    errorname = getattr(orig, "sqlite_errorname", None)
    return errorname if isinstance(errorname, str) else None
