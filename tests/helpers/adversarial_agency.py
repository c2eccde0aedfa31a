"""An agency whose notes are written for colleagues, not clients: the description corpus.

One portal client, "Acme Labs", and its neighbours in the same tracker: other clients
(one of them, "Acme", inside our own name), their projects and codes, colleagues in
several scripts, one of whom never logged time for Acme Labs. Each note of `CORPUS`
becomes one published entry of Acme Labs, 2 hours at a rate of 150; the project's own
rate is 125. What each note must lose is written down by hand beside it, so a test can
expect exactly which descriptions are redacted and withheld under a policy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bridge.config import Config, VisibilityConfig, parse_config
from bridge.models import Client, Person, Project, Task, TimeEntry
from bridge.store import Store

NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)
TODAY = dt.date(2025, 3, 20)
OUR_KEY = "acme-labs"
OUR_NAME = "Acme Labs"
SRC = "hv"


@dataclass(frozen=True)
class Note:
    text: str
    names: bool = False  # names a person: rewritten unless the policy shows full names
    other: bool = False  # holds something removed under every policy
    withheld_when_rates_hidden: bool = False  # the guard still finds a hidden rate in it


CORPUS: tuple[Note, ...] = (
    Note("Reused the cart component we built for Globex Corporation", other=True),
    Note("Paired with Emma Schmidt on checkout", names=True),
    Note("Review with SCHMIDT, EMMA of the header", names=True),
    Note("Schmidt's fix for the header", names=True),
    Note("Call with jose nunez about the API", names=True),
    Note("Núñez’s PR merged", names=True),
    Note("Liam O'Connor and L. O'Connor reviewed the copy", names=True),
    Note("Worked with Zoë Ångström on the icons", names=True),
    Note("Mail emma.schmidt@agency.example and ops@globex.example about access", other=True),
    Note("Phone +1 (555) 123-4567 and 030 1234 5678 for the vendor", other=True),
    Note("See https://jira.agency.example/browse/ACL-12 and https://github.com/acmelabs/site/pull/3", other=True),
    Note("Fixed layout [internal] zorgblat estimate blown [/internal] and deployed", other=True),
    Note("Deployed the fix [internal] quuxwrong we broke staging ourselves", other=True),
    Note("<script>alert('Initech')</script> payload & <b>bold</b> text", other=True),
    Note("与Emma Schmidt讨论 Falcon Portal 设计", names=True, other=True),
    Note("Встреча с Дмитрий Иванов о проекте TPS Reports", names=True, other=True),
    Note("Acme Labs homepage, not the one we made for Acme", other=True),
    Note("Project Falcon kickoff notes", other=True),
    Note("Ticket JIRA-4411 closed", other=True),
    Note("Umbrella Gesellschaft für Ölförderung asked for the same banner", other=True),
    Note("Cache warmup for 東京デザイン staging", other=True),
    Note("Rate was 150/h for this sprint", withheld_when_rates_hidden=True),
    Note("Page 125 of 143 reviewed, 150 comments, 20% done, 12.03.2025"),
    Note("Documented login rate limiting (ticket 12)"),
    Note("Homepage hero – second iteration"),
)

# the generic note of an internal entry: the same words are on a visible note above
INTERNAL_GENERIC = "Documented login rate limiting"

OTHER_CLIENTS = {"c2": "Globex Corporation", "c3": "Initech", "c4": "Acme",
                 "c5": "Umbrella Gesellschaft für Ölförderung", "c6": "東京デザイン"}
OTHER_PROJECTS = {"p2": ("Falcon Portal", "GLX-7", "c2"), "p3": ("TPS Reports", "INI-2", "c3")}
# (id, first, last, role, logs time for Acme Labs)
PEOPLE = (
    ("u1", "Emma", "Schmidt", "Developer", True),
    ("u2", "José", "Núñez", "Designer", True),
    ("u3", "Liam", "O'Connor", "Copywriter", True),
    ("u4", "Zoë", "Ångström", "Illustrator", False),
    ("u5", "Дмитрий", "Иванов", "Project manager", False),
)
RATE = Decimal("150")
PROJECT_RATE = Decimal("125")

# What must never be readable in Acme Labs' portal, whatever the policy (folded text).
ALWAYS_GONE = (
    "globex", "initech", "umbrella gesellschaft", "olforderung", "東京デザイン", "falcon portal", "tps reports",
    "glx-7", "ini-2", "zorgblat", "quuxwrong", "jira.agency.example", "agency.example", "project falcon",
    "jira-4411", "123-4567", "1234 5678",
)
LAST_NAMES = ("schmidt", "nunez", "connor", "angstrom", "иванов")
FIRST_NAMES = ("emma", "jose", "liam", "zoe", "дмитрий")


def config(vis: VisibilityConfig | None = None, **redact: Any) -> Config:
    vis = vis or VisibilityConfig(descriptions="detailed", view="realtime")
    return parse_config({
        "agency": {"name": "Northwind Studio", "timezone": "Europe/Berlin"},
        "sources": [{"name": SRC, "kind": "harvest"}],
        "clients": [
            {"key": OUR_KEY, "name": OUR_NAME, "sources": {SRC: ["c1"]}, "visibility": vis.model_dump()},
            {"key": "globex", "name": "Globex Corporation", "sources": {SRC: ["c2"]}},
        ],
        "redact": {"terms": ["Project Falcon"], "patterns": [r"\bJIRA-\d+\b"], "allow_domains": ["github.com"],
                   **redact},
        "publish": {"target": "file://./unused"},
    })


def populate(store: Store, corpus: tuple[Note, ...] = CORPUS) -> dict[str, Note]:
    """Write the agency; returns {entry id: note} for Acme Labs' published entries."""
    store.upsert([Client.model_validate({"source": SRC, "source_id": "c1", "name": OUR_NAME, "currency": "EUR"})]
                 + [Client.model_validate({"source": SRC, "source_id": k, "name": v, "currency": "EUR"})
                    for k, v in OTHER_CLIENTS.items()])
    store.upsert([Project.model_validate({
        "source": SRC, "source_id": "p1", "client_source_id": "c1", "name": "Website Relaunch", "code": "ACL-01",
        "currency": "EUR", "hourly_rate": PROJECT_RATE, "budget_kind": "hours", "budget_seconds": 400 * 3600,
    })] + [Project.model_validate({"source": SRC, "source_id": k, "client_source_id": c, "name": n, "code": code,
                                   "currency": "EUR"}) for k, (n, code, c) in OTHER_PROJECTS.items()])
    store.upsert([Person.model_validate({
        "source": SRC, "source_id": pid, "first_name": first, "last_name": last, "role": role,
        "email": f"{first.lower()}.{last.lower()}@agency.example",
    }) for pid, first, last, role, _ in PEOPLE])
    store.upsert([Task.model_validate({"source": SRC, "source_id": "t1", "name": "Development"}),
                  Task.model_validate({"source": SRC, "source_id": "t2", "name": "Design"})])
    loggers = [p[0] for p in PEOPLE if p[4]]
    entries = []
    out: dict[str, Note] = {}
    for i, note in enumerate(corpus):
        eid = f"e{i + 1}"
        out[eid] = note
        entries.append(_entry(eid, loggers[i % len(loggers)], TODAY - dt.timedelta(days=i % 40), note.text))
    entries.append(_entry("e-internal", "u1", TODAY - dt.timedelta(days=3), INTERNAL_GENERIC, tags="internal"))
    entries.append(_entry("e-other", "u5", TODAY, "Globex work", client="c2", project="p2"))
    store.upsert(entries)
    return out


def _entry(eid: str, person: str, day: dt.date, notes: str, *, tags: str = "", client: str = "c1",
           project: str = "p1") -> TimeEntry:
    return TimeEntry.model_validate({
        "source": SRC, "source_id": eid, "client_source_id": client, "project_source_id": project,
        "person_source_id": person, "task_source_id": "t1", "spent_date": day, "seconds": 7200,
        "is_billable": True, "is_approved": True, "notes": notes, "tags": tags,
        "billable_rate": RATE, "billable_amount": RATE * 2, "currency": "EUR",
    })


def expected(notes: dict[str, Note], vis: VisibilityConfig) -> tuple[set[str], set[str]]:
    """(redacted entry ids, withheld entry ids) under `vis`, worked out from the notes' flags."""
    if vis.descriptions != "detailed" or vis.view != "realtime":
        return set(), set()
    redacted = {e for e, n in notes.items() if n.other or (n.names and vis.team_names != "full")}
    withheld = {e for e, n in notes.items() if n.withheld_when_rates_hidden and vis.rates == "hidden"}
    return redacted, withheld
