"""An agency whose every hidden field carries a unique sentinel, for leak tests.

`SentinelAgency.populate(store)` writes one portal client ("ours", possibly spread over
two sources) plus another client, with people, tasks, entries and invoices. Every value
that some policy must keep from our client's portal is a unique string or number:

* text sentinels look like ``SNTLnote007Z`` (fixed width and a terminator, so one never
  contains another);
* number sentinels are rates like ``8107.47`` whose cents (.47) no hours, total, burn or
  percentage built from the data can ever produce (entry durations are multiples of 15
  minutes and amounts multiples of 25.00).

`hidden(vis)` returns {what: sentinel} that must not appear anywhere in that client's
portal under visibility settings `vis`; `visible(vis)` returns values that must appear,
so a leak test cannot pass by publishing nothing. `agency_specs()` is a hypothesis
strategy of AgencySpec, and `all_visibilities()` lists every combination of settings.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from bridge.config import ClientConfig, Config, VisibilityConfig, parse_config
from bridge.models import Client, Invoice, Person, Project, Task, TaskAssignment, TimeEntry
from bridge.store import Store

NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)
TODAY = dt.date(2025, 3, 20)
OUR_KEY = "ours"
OUR_NAME = "Bright Client Co"
SOURCES = ("srca", "srcb")
INTERNAL_TASK = "SNTLinternaltask000Z"
INTERNAL_PREFIX = "[internal]"
INTERNAL_TAG = "internal"

SETTINGS = {
    "rates": ("hidden", "shown"),
    "descriptions": ("detailed", "summary", "hidden"),
    "team_names": ("full", "first_name", "role", "anonymous"),
    "non_billable": ("shown", "hidden"),
    "invoices": ("shown", "hidden"),
    "view": ("realtime", "weekly"),
    "approved_only": (False, True),
}


def all_visibilities() -> list[VisibilityConfig]:
    """Every combination of the visibility settings (384)."""
    keys = list(SETTINGS)
    return [
        VisibilityConfig(**dict(zip(keys, combo)), internal_tasks=[INTERNAL_TASK],
                         internal_note_prefixes=[INTERNAL_PREFIX], internal_tags=[INTERNAL_TAG])
        for combo in itertools.product(*(SETTINGS[k] for k in keys))
    ]


def visibilities() -> st.SearchStrategy[VisibilityConfig]:
    return st.sampled_from(all_visibilities())


@dataclass(frozen=True)
class EntrySpec:
    person: int
    quarters: int  # duration in 15-minute steps
    days_ago: int
    billable: bool = True
    approved: bool = True
    running: bool = False
    invoiced: bool = False
    deleted: bool = False
    internal: str = "none"  # none | task | note | tag | line  (line: a public note with one internal line)
    source: int = 0


@dataclass(frozen=True)
class AgencySpec:
    people: int = 2
    entries: tuple[EntrySpec, ...] = ()
    other_entries: int = 2
    currencies: tuple[str, str] = ("EUR", "USD")
    monthly_budget: bool = False
    money_budget: bool = True
    invoice_statuses: tuple[str, ...] = ("open", "paid")


def entry_specs(people: int) -> st.SearchStrategy[EntrySpec]:
    return st.builds(
        EntrySpec,
        person=st.integers(0, people - 1),
        quarters=st.integers(1, 40),
        days_ago=st.integers(0, 70),
        billable=st.booleans(),
        approved=st.booleans(),
        running=st.booleans(),
        invoiced=st.booleans(),
        deleted=st.booleans(),
        internal=st.sampled_from(["none", "none", "task", "note", "tag", "line"]),
        source=st.integers(0, 1),
    )


@st.composite
def agency_specs(draw: Any) -> AgencySpec:
    people = draw(st.integers(1, 4))
    entries = draw(st.lists(entry_specs(people), min_size=0, max_size=12))
    return AgencySpec(
        people=people,
        entries=tuple(entries),
        other_entries=draw(st.integers(0, 3)),
        currencies=draw(st.sampled_from([("EUR", "USD"), ("EUR", "EUR"), ("GBP", "USD")])),
        monthly_budget=draw(st.booleans()),
        money_budget=draw(st.booleans()),
        invoice_statuses=tuple(draw(st.lists(st.sampled_from(["draft", "open", "partial", "paid", "void"]), max_size=4))),
    )


def _s(kind: str, n: int) -> str:
    return f"SNTL{kind}{n:03d}Z"


def _rate(n: int) -> Decimal:
    return Decimal(8000 + 7 * n) + Decimal("0.47")


@dataclass
class SentinelAgency:
    spec: AgencySpec = field(default_factory=lambda: DEFAULT_SPEC)
    # filled by populate(): what -> (sentinel, condition name)
    facts: list[tuple[str, str, str]] = field(default_factory=list)
    anchor: dict[str, str] = field(default_factory=dict)

    def config(self, vis: VisibilityConfig | None = None) -> Config:
        vis = vis or VisibilityConfig()
        return parse_config({
            "agency": {"name": "Sentinel Agency", "timezone": "Europe/Berlin"},
            "sources": [{"name": s, "kind": "harvest"} for s in SOURCES],
            "clients": [
                {"key": OUR_KEY, "name": OUR_NAME, "sources": {"srca": ["c1"], "srcb": ["c1"]},
                 "visibility": vis.model_dump(), "glossary": {"DSN": "Design work"}},
                {"key": "other", "name": _s("otherclientcfg", 0), "sources": {"srca": ["c2"]}},
            ],
        })

    def client_cfg(self, vis: VisibilityConfig | None = None) -> ClientConfig:
        return self.config(vis).client(OUR_KEY)

    def _fact(self, what: str, value: str, when: str = "always") -> str:
        self.facts.append((what, value, when))
        return value

    def populate(self, store: Store) -> "SentinelAgency":
        spec = self.spec
        f = self._fact
        n = itertools.count(1)
        for si, src in enumerate(SOURCES):
            store.upsert([
                Client.model_validate({"source": src, "source_id": "c1", "name": OUR_NAME, "currency": spec.currencies[si]}),
                Client.model_validate({"source": src, "source_id": "c2", "name": f(f"other client name {src}", _s("otherclient", si))}),
            ])
            store.upsert([
                Project.model_validate({
                    "source": src, "source_id": "p1", "client_source_id": "c1", "name": f"Website {src}",
                    "currency": spec.currencies[si], "hourly_rate": f(f"project rate {src}", str(_rate(next(n))), "rates_hidden"),
                    "budget_kind": "money" if spec.money_budget and si == 0 else "hours",
                    "budget_period": "monthly" if spec.monthly_budget else "total",
                    "budget_seconds": 360000, "budget_money": Decimal("50000"),
                    "ends_on": TODAY + dt.timedelta(days=60),
                }),
                Project.model_validate({
                    "source": src, "source_id": "p2", "client_source_id": "c2",
                    "name": f(f"other project name {src}", _s("otherproject", si)), "currency": "EUR",
                }),
            ])
            people = []
            for pi in range(spec.people):
                people.append(Person.model_validate({
                    "source": src, "source_id": f"u{pi}",
                    "first_name": f(f"first name {src}/{pi}", _s(f"first{si}", pi), "first_hidden"),
                    "last_name": f(f"last name {src}/{pi}", _s(f"last{si}", pi), "last_hidden"),
                    "email": f(f"email {src}/{pi}", f"{_s('mail', si * 10 + pi)}@example.com"),
                    "role": f(f"role {src}/{pi}", _s(f"role{si}", pi), "role_hidden"),
                    "cost_rate": f(f"person cost rate {src}/{pi}", str(_rate(next(n)))),
                    "default_hourly_rate": f(f"person default rate {src}/{pi}", str(_rate(next(n))), "rates_hidden"),
                    "is_active": pi != 1,  # an inactive person's history still shows
                }))
            store.upsert(people)
            store.upsert([
                Task.model_validate({"source": src, "source_id": "t-dsn", "name": "DSN",
                                     "default_hourly_rate": f(f"task rate {src}", str(_rate(next(n))), "rates_hidden")}),
                Task.model_validate({"source": src, "source_id": "t-int", "name": f("internal task", INTERNAL_TASK)}),
                Task.model_validate({"source": src, "source_id": "t-oth", "name": f(f"other client's task {src}", _s("othertask", si))}),
            ])
            store.upsert([TaskAssignment.model_validate({
                "source": src, "source_id": "ta1", "project_source_id": "p1", "task_source_id": "t-dsn",
                "hourly_rate": f(f"assignment rate {src}", str(_rate(next(n))), "rates_hidden"),
            })])
        entries: list[TimeEntry] = []
        # the anchor: always published, so the visible() checks have something to find
        anchor_note = _s("anchornote", 0)
        entries.append(self._entry(0, EntrySpec(person=0, quarters=8, days_ago=1), anchor_note, n))
        self.anchor = {"note": anchor_note, "first": _s("first0", 0), "last": _s("last0", 0),
                       "rate": str(entries[0].billable_rate)}
        for i, es in enumerate(spec.entries, start=1):
            entries.append(self._entry(i, es, None, n))
        for j in range(spec.other_entries):
            entries.append(TimeEntry.model_validate({
                "source": "srca", "source_id": f"o{j}", "client_source_id": "c2", "project_source_id": "p2",
                "person_source_id": "u0", "task_source_id": "t-oth", "spent_date": TODAY - dt.timedelta(days=j),
                "seconds": 3600, "is_billable": True, "is_approved": True,
                "notes": f(f"other client's note {j}", _s("othernote", j)),
                "billable_rate": f(f"other client's rate {j}", str(_rate(next(n)))),
                "billable_amount": Decimal("100"), "currency": "EUR",
            }))
        for src in SOURCES:
            mine = [e for e in entries if e.source == src]
            if mine:
                store.upsert(mine)
        invoices = []
        for k, status in enumerate(spec.invoice_statuses):
            invoices.append(Invoice.model_validate({
                "source": "srca", "source_id": f"i{k}", "client_source_id": "c1",
                "number": f(f"invoice number {k}", _s("invoice", k), "invoices_hidden"),
                "issue_date": TODAY - dt.timedelta(days=40), "due_date": TODAY - dt.timedelta(days=10),
                "amount": Decimal("1000"), "due_amount": Decimal("0") if status == "paid" else Decimal("1000"),
                "currency": spec.currencies[0], "status": status,
            }))
        invoices.append(Invoice.model_validate({
            "source": "srca", "source_id": "i-other", "client_source_id": "c2",
            "number": f("other client's invoice", _s("otherinvoice", 0)),
            "amount": Decimal("500"), "due_amount": Decimal("500"), "currency": "EUR", "status": "open",
        }))
        store.upsert(invoices)
        if any(e.is_deleted for e in entries):
            for src in SOURCES:
                ids = [e.source_id for e in entries if e.source == src and e.is_deleted]
                if ids:
                    store.delete_ids(src, TimeEntry, ids)
        return self

    def _entry(self, i: int, es: EntrySpec, note: str | None, n: Iterator[int]) -> TimeEntry:
        f = self._fact
        src = SOURCES[es.source]
        note = note or _s("note", i)
        # what makes this entry unpublished under some policies
        when = "entry_" + str(i)
        task = "t-dsn"
        tags = "client-facing"
        text = note
        if es.internal == "task":
            task = "t-int"
        elif es.internal == "note":
            text = f"{INTERNAL_PREFIX} {note}"
        elif es.internal == "tag":
            tags = f"billing,{INTERNAL_TAG}"
        elif es.internal == "line":
            text = f"{note}\n  {INTERNAL_PREFIX} {f(f'internal line of entry {i}', _s('internalline', i))}"
        self._entries_meta[when] = es
        f(f"notes of entry {i}", note, when)
        billable_rate = _rate(next(n))
        f(f"billable rate of entry {i}", str(billable_rate), when + "|rate")
        f(f"cost rate of entry {i}", str(_rate(next(n))))
        secs = es.quarters * 900
        e = TimeEntry.model_validate({
            "source": src, "source_id": f"e{i}", "client_source_id": "c1", "project_source_id": "p1",
            "person_source_id": f"u{es.person}", "task_source_id": task,
            "spent_date": TODAY - dt.timedelta(days=es.days_ago), "seconds": secs,
            "is_billable": es.billable, "is_approved": es.approved, "is_running": es.running,
            "is_invoiced": es.invoiced, "notes": text, "tags": tags,
            "billable_rate": billable_rate, "cost_rate": self.facts[-1][1],
            "billable_amount": Decimal(es.quarters * 25), "currency": None,
        })
        # upsert always writes live rows; populate() soft-deletes these afterwards
        e.is_deleted = es.deleted
        return e

    def __post_init__(self) -> None:
        self._entries_meta: dict[str, EntrySpec] = {"entry_0": EntrySpec(person=0, quarters=8, days_ago=1)}

    # --- expectations --------------------------------------------------------------
    def _published(self, es: EntrySpec, vis: VisibilityConfig) -> bool:
        if es.deleted or es.internal in ("task", "note", "tag"):
            return False
        if not es.billable and vis.non_billable == "hidden":
            return False
        if vis.approved_only and not es.approved:
            return False
        return True

    def hidden(self, vis: VisibilityConfig) -> dict[str, str]:
        """{what: sentinel} that must not appear in the portal under `vis`."""
        out = {}
        for what, value, when in self.facts:
            if self._is_hidden(when, vis):
                out[what] = value
        return out

    def _is_hidden(self, when: str, vis: VisibilityConfig) -> bool:
        if when == "always":
            return True
        if when == "rates_hidden":
            return vis.rates == "hidden"
        if when == "invoices_hidden":
            return vis.invoices == "hidden"
        if when == "last_hidden":
            return vis.team_names != "full"
        if when == "first_hidden":
            return vis.team_names in ("role", "anonymous")
        if when == "role_hidden":
            return vis.team_names != "role"
        if when.startswith("entry_"):
            key, _, rate = when.partition("|")
            es = self._entries_meta[key]
            if not self._published(es, vis):
                return True
            if rate:
                return vis.rates == "hidden"
            return vis.descriptions != "detailed" or vis.view == "weekly"
        raise AssertionError(when)

    def visible(self, vis: VisibilityConfig) -> dict[str, str]:
        """Values that must appear under `vis` (the always-published anchor entry)."""
        out = {"client name": OUR_NAME}
        if vis.descriptions == "detailed" and vis.view == "realtime":
            out["anchor note"] = self.anchor["note"]
        if vis.team_names == "full":
            out["anchor person's last name"] = self.anchor["last"]
        if vis.team_names in ("full", "first_name"):
            out["anchor person's first name"] = self.anchor["first"]
        if vis.rates == "shown" and vis.view == "realtime":
            out["anchor rate"] = self.anchor["rate"]
        return out


DEFAULT_SPEC = AgencySpec(
    people=3,
    entries=(
        EntrySpec(person=1, quarters=4, days_ago=3, billable=False),
        EntrySpec(person=2, quarters=6, days_ago=10, approved=False),
        EntrySpec(person=0, quarters=3, days_ago=0, running=True),
        EntrySpec(person=1, quarters=5, days_ago=20, internal="task"),
        EntrySpec(person=2, quarters=7, days_ago=2, internal="note"),
        EntrySpec(person=0, quarters=2, days_ago=5, internal="tag"),
        EntrySpec(person=1, quarters=9, days_ago=4, internal="line", source=1),
        EntrySpec(person=0, quarters=4, days_ago=6, deleted=True),
        EntrySpec(person=2, quarters=8, days_ago=35, invoiced=True, source=1),
    ),
)
