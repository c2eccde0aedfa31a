"""What a source's token may read, in lines for `bridge check`.

A token can work and still lack permissions (a non-admin Harvest user may not list
clients or see rates). `bridge check` says so before a sync skips those resources.
"""

from __future__ import annotations

from typing import Any

from bridge.connector import Access


def source_access(conn: Any) -> Access | None:
    """The connector's access report, or None after a plain check if it cannot give one."""
    report = getattr(conn, "access", None)
    if report is None:
        conn.check()
        return None
    return report()


def describe(access: Access | None) -> list[str]:
    """Human lines: who, the provider's permission flags, rates, what may and may not be read."""
    if access is None:
        return []
    facts = ", ".join(f"{k}={_fact(v)}" for k, v in access.facts.items())
    lines = [f"token of {access.who}" + (f" ({facts})" if facts else "")]
    if access.rates_visible is True:
        lines.append("rates and money amounts: visible")
    elif access.rates_visible is False:
        lines.append("rates and money amounts: NOT visible to this token (portals show hours; money budgets and values are missing)")
    readable = [r for r, ok in access.readable.items() if ok]
    refused = [r for r, ok in access.readable.items() if not ok]
    if readable:
        lines.append("may read: " + ", ".join(readable))
    for name in refused:
        lines.append(f"may NOT read {name}: {access.advice.get(name, 'permission missing')}")
    return lines


def _fact(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(str(v) for v in value) or "none"
    return str(value)
