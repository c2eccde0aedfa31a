"""The review queue: which descriptions the last publish redacted or withheld, where and why.

Stored at publish time (table `description_reviews`, replaced per client on each publish)
so `bridge review` answers without rebuilding any portal. Rows say which entry (source,
id, date, project, person as displayed) and why ("another client's name (harvest:2)"),
never the removed text: the agency fixes the note in its tracker, or extends `[redact]`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import select

from bridge.models import DescriptionReview
from bridge.redaction import Finding
from bridge.store import Store


@dataclass(frozen=True)
class ReviewItem:
    client_key: str
    published_at: dt.datetime | None
    action: str  # redacted | withheld
    source: str
    entry_id: str
    spent_date: dt.date
    project: str
    person: str
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {
            "client": self.client_key, "published_at": self.published_at.isoformat() if self.published_at else None,
            "action": self.action, "source": self.source, "entry_id": self.entry_id,
            "date": self.spent_date.isoformat(), "project": self.project, "person": self.person,
            "reasons": list(self.reasons),
        }


def save_review(store: Store, client_key: str, findings: Sequence[Finding], *, at: dt.datetime) -> None:
    """Replace the client's review rows with this publish's findings (one transaction)."""
    table = DescriptionReview.__table__  # type: ignore[attr-defined]
    rows = [
        {"client_key": client_key, "published_at": at, "source": f.entry.source, "entry_source_id": f.entry.source_id,
         "spent_date": f.entry.spent_date, "project": f.entry.project, "person": f.entry.person,
         "action": f.action, "reasons": "; ".join(f.reasons)}
        for f in findings
    ]
    with store.engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.client_key == client_key))
        if rows:
            conn.execute(sa.insert(table), rows)


def review_items(store: Store, clients: Iterable[str] | None = None, *, action: str | None = None) -> list[ReviewItem]:
    """What the last publish of each client held back: withheld first, then by date."""
    with store.session() as s:
        q = select(DescriptionReview)
        keys = list(clients) if clients is not None else None
        if keys is not None:
            q = q.where(DescriptionReview.client_key.in_(keys))  # type: ignore[attr-defined]
        if action is not None:
            q = q.where(DescriptionReview.action == action)
        rows = list(s.exec(q))
    items = [
        ReviewItem(r.client_key, r.published_at, r.action, r.source, r.entry_source_id, r.spent_date, r.project,
                   r.person, tuple(x for x in r.reasons.split("; ") if x))
        for r in rows
    ]
    order = {"withheld": 0, "redacted": 1}
    return sorted(items, key=lambda i: (i.client_key, order.get(i.action, 2), i.spent_date, i.source, i.entry_id))
