"""One client's visibility policy, applied while the PortalView is built (an allowlist).

Decisions, so the figures a client sees always add up and reveal nothing by difference:

* Entries the policy withholds - internal work (a task named in `internal_tasks`, notes
  whose first line starts with an internal prefix, a tag in `internal_tags`), non-billable
  time when `non_billable = "hidden"`, unapproved time under `approved_only` - are left out
  of every listing and of the totals of listed work: timesheet rows, hours, billable value,
  unbilled time and the invoice preview. Budgets count them as the tracker does (a
  client's `budget_basis = "tracker"`, the default) and say, in hours, how much of the
  total is not itemized, so budget use equals the tracker's own figure (bridge/figures.py);
  `budget_basis = "published"` leaves them out of budgets too.
* descriptions: detailed = the notes without any line that starts with an internal
  prefix; summary = the task name; hidden = nothing.
* team_names: full = "First Last"; first_name = "First"; role = the person's role or
  "Team member"; anonymous = "Team member A", "B", … assigned once per view in a stable
  order (by source, then the provider's person id), so the same person keeps the same
  letter in every table of the portal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bridge.config import VisibilityConfig

TEAM_MEMBER = "Team member"


def _fold(s: str) -> str:
    return s.strip().casefold()


@dataclass(frozen=True)
class Policy:
    """VisibilityConfig turned into the predicates the view builder asks."""

    vis: VisibilityConfig

    @property
    def rates_shown(self) -> bool:
        return self.vis.rates == "shown"

    @property
    def invoices_shown(self) -> bool:
        return self.vis.invoices == "shown"

    @property
    def non_billable_shown(self) -> bool:
        return self.vis.non_billable == "shown"

    # --- internal markers ---------------------------------------------------------
    def is_internal_task(self, task_name: str | None) -> bool:
        if not task_name:
            return False
        return _fold(task_name) in {_fold(t) for t in self.vis.internal_tasks if t.strip()}

    def is_internal_line(self, line: str) -> bool:
        head = line.lstrip().casefold()
        return any(head.startswith(p.casefold()) for p in self.vis.internal_note_prefixes if p.strip())

    def is_internal_note(self, notes: str | None) -> bool:
        """A note whose first non-blank line carries an internal prefix marks the whole entry."""
        if not notes:
            return False
        for line in notes.splitlines():
            if line.strip():
                return self.is_internal_line(line)
        return False

    def has_internal_tag(self, tags: str | None) -> bool:
        if not tags:
            return False
        marked = {_fold(t) for t in self.vis.internal_tags if t.strip()}
        return any(_fold(t) in marked for t in tags.split(",") if t.strip())

    def is_internal(self, *, task_name: str | None, notes: str | None, tags: str | None) -> bool:
        return self.is_internal_task(task_name) or self.is_internal_note(notes) or self.has_internal_tag(tags)

    # --- which entries are published ------------------------------------------------
    def publishes(
        self, *, task_name: str | None, notes: str | None, tags: str | None, is_billable: bool, is_approved: bool
    ) -> bool:
        if self.is_internal(task_name=task_name, notes=notes, tags=tags):
            return False
        if not is_billable and not self.non_billable_shown:
            return False
        if self.vis.approved_only and not is_approved:
            return False
        return True

    # --- what an entry says -----------------------------------------------------------
    def description(self, notes: str | None, task_name: str | None) -> str | None:
        mode = self.vis.descriptions
        if mode == "hidden":
            return None
        if mode == "summary":
            return task_name or None
        if not notes:
            return None
        kept = [ln for ln in notes.splitlines() if not self.is_internal_line(ln)]
        text = "\n".join(kept).strip()
        return text or None


def anonymous_label(index: int) -> str:
    """0 -> "Team member A", 25 -> "Team member Z", 26 -> "Team member AA"."""
    letters = ""
    n = index
    while True:
        letters = chr(ord("A") + n % 26) + letters
        n = n // 26 - 1
        if n < 0:
            break
    return f"{TEAM_MEMBER} {letters}"


@dataclass(frozen=True)
class PersonFacts:
    """What naming needs about one person; key is (source, person source id)."""

    key: tuple[str, str]
    first_name: str = ""
    last_name: str = ""
    role: str | None = None


def display_names(mode: str, people: Iterable[PersonFacts]) -> dict[tuple[str, str], str]:
    """Display name for each person under the team_names policy, consistent across a view."""
    ordered = sorted({p.key: p for p in people}.values(), key=lambda p: p.key)
    out: dict[tuple[str, str], str] = {}
    for i, p in enumerate(ordered):
        if mode == "full":
            name = f"{p.first_name.strip()} {p.last_name.strip()}".strip()
        elif mode == "first_name":
            name = p.first_name.strip()
        elif mode == "role":
            name = (p.role or "").strip()
        else:
            name = anonymous_label(i)
        out[p.key] = name or TEAM_MEMBER
    return out
