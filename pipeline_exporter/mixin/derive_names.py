"""Names a derived dashboard and its alerts take from a pack: uids, alert names, titles and units."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

# Grafana refuses a dashboard uid longer than this.
UID_MAX = 40
# A metric name's last word(s) -> the Grafana unit of its values (Prometheus naming conventions).
# A timestamp is shown as its age, in seconds too.
UNITS = (("_seconds", "s"), ("_bytes", "bytes"),
         ("_ratio", "percentunit"), ("_percent", "percent"), ("_usd", "currencyUSD"),
         ("_eur", "currencyEUR"), ("_gbp", "currencyGBP"), ("_celsius", "celsius"), ("_meters", "lengthm"))
# Suffixes that name a metric's kind, not its quantity.
KIND_SUFFIXES = ("_total", "_recent", "_info")


def slug(name: str) -> str:
    """``Ticket Desk_2`` -> ``ticket-desk-2``: what a uid and a file name may hold."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    return "-".join(words) or "pack"


def uid(pack: str, suffix: str = "overview") -> str:
    """The derived dashboard's uid, at most 40 characters; a long name keeps a hash of itself."""
    full = f"{slug(pack)}-{suffix}"
    if len(full) <= UID_MAX:
        return full
    digest = hashlib.sha1(full.encode()).hexdigest()[:8]
    return f"{full[:UID_MAX - len(digest) - 1].rstrip('-')}-{digest}"


def alert_prefix(pack: str) -> str:
    """``ticket_desk`` -> ``TicketDesk``: the first word of every derived alert's name, so the
    alerts of several packs loaded together never share a name."""
    words = re.findall(r"[A-Za-z0-9]+", pack)
    camel = "".join(word[:1].upper() + word[1:] for word in words) or "Pack"
    return camel if camel[0].isalpha() else f"Pack{camel}"


def base_name(metric: str) -> str:
    """A metric's name without the suffix of its kind: ``desk_tickets_created_total`` -> ``desk_tickets_created``."""
    for suffix in KIND_SUFFIXES:
        if metric.endswith(suffix):
            return metric[: -len(suffix)]
    return metric


def unit(metric: str) -> str:
    """The Grafana unit a metric's name announces (``short`` when it names none)."""
    base = base_name(metric)
    return next((grafana for suffix, grafana in UNITS if base.endswith(suffix)), "short")


def is_timestamp(metric: str) -> bool:
    return base_name(metric).endswith("_timestamp_seconds")


def common_prefix(names: Iterable[str]) -> str:
    """The words every metric of a pack starts with (``desk_``), never a whole name."""
    names = list(names)
    if len(names) < 2:
        return ""
    words = [name.split("_") for name in names]
    shared: list[str] = []
    for column in zip(*words):
        if len(set(column)) != 1:
            break
        shared.append(column[0])
    if any(len(w) <= len(shared) for w in words):
        shared = shared[:-1]
    return "_".join(shared) + "_" if shared else ""


def title(metric: str, prefix: str = "") -> str:
    """``desk_tickets_created_total`` (prefix ``desk_``) -> ``Tickets created``."""
    base = base_name(metric)
    if is_timestamp(metric):
        base = base[: -len("_timestamp_seconds")]
    # The unit is the panel's; the title names the quantity.
    base = next((base[: -len(suffix)] for suffix, _ in UNITS if base.endswith(suffix) and base != suffix), base)
    words = base[len(prefix):] if prefix and base.startswith(prefix) else base
    text = words.replace("_", " ").strip() or metric
    return text[:1].upper() + text[1:]


def legend(labels: Iterable[str]) -> str:
    """``{{channel}} {{status}}``: one series per label set (``total`` when there are none)."""
    names = list(labels)
    return " ".join("{{" + name + "}}" for name in names) if names else "total"


def plain(text: str) -> str:
    """A user's text (a pack's name, a metric's help) kept as it is through the renderer's
    placeholders (``%{``): for dashboards, where Grafana reads ``{{`` as text."""
    return text.replace("%{", "%%{")


def safe(text: str) -> str:
    """A user's text kept as it is through the placeholders and Prometheus's and Alertmanager's
    templates (``{{``): for alert annotations and labels only."""
    return plain(text).replace("{{", "{ {").replace("}}", "} }")
