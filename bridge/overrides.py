"""The agency's `[[clients.budgets]]` entries, applied to projects as they are read.

A tracker cannot always say what the agency knows: FreshBooks has no monthly budget, so a
retainer reads as a lifetime budget unless the config says `period = "month"`. The
override is applied to the project rows every figure is computed from (the portal view,
alerts, `bridge verify`), never written to the store: the next sync cannot undo it, and
removing it from the config restores the tracker's own budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from bridge.config import BudgetOverride, ClientConfig


def override_for(client_cfg: "ClientConfig", project: Any) -> "BudgetOverride | None":
    """The client's override naming this project by id, else by name (case-insensitive)."""
    by_name = None
    for b in getattr(client_cfg, "budgets", ()):
        if b.source != project.source:
            continue
        if b.ref == str(project.source_id):
            return b
        if by_name is None and b.ref.casefold() == (project.name or "").casefold():
            by_name = b
    return by_name


def fallback_rate(client_cfg: "ClientConfig", project: Any) -> Decimal | None:
    """The agency's hourly rate for a project whose tracker gives none (None when unset)."""
    if project is None:
        return None
    b = override_for(client_cfg, project)
    return b.hourly_rate if b is not None else None


def apply_budget_overrides(projects: Iterable[Any], client_cfg: "ClientConfig") -> None:
    """Set period, kind and amount from the config on these (detached) project rows.

    Only fields the override names change: `period = "month"` alone keeps the tracker's
    amount and makes it monthly.
    """
    for p in projects:
        b = override_for(client_cfg, p)
        if b is None:
            continue
        if b.kind is not None and b.amount is not None:
            p.budget_kind = b.kind
            p.budget_seconds = int(b.amount * 3600) if b.kind == "hours" else None
            p.budget_money = b.amount if b.kind == "money" else None
            p.budget_visible = True
            if p.budget_period is None and b.period is None:
                p.budget_period = "total"
        if b.period is not None and p.budget_kind is not None:
            p.budget_period = "monthly" if b.period == "month" else "total"


def unmatched(client_cfg: "ClientConfig", projects: Iterable[Any]) -> list[str]:
    """Overrides that name no project of this client: a typo the agency should hear about."""
    projects = list(projects)
    return [
        b.project for b in getattr(client_cfg, "budgets", ())
        if not any(p.source == b.source and override_for(client_cfg, p) is b for p in projects)
    ]
