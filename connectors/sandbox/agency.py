"""A generated, provider-neutral agency: the single source of truth every sandbox provider serves.

Provider modules read this dataset and render it in their own wire shapes; nothing here knows
about Harvest, FreshBooks or Productive. Everything is deterministic for a (seed, today) pair, so
tests can assert on generated data, and the only non-deterministic input is the clock used for
mutations (`now`, injectable).

Time entries are the bulk (200k for benchmarks), so they are compact `Entry` named tuples with
timestamps as epoch seconds; edits replace the tuple. Durations are always whole minutes, and the
generator uses multiples of 3 minutes so that every provider's unit (Harvest decimal hours with
2 decimals, FreshBooks seconds, Productive minutes) represents them exactly.

Reads and mutations from several server threads go through `agency.lock`.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from bisect import bisect_left, insort
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
AGENCY_TIMEZONE = "Europe/Berlin"
MALFORMATIONS = ("bad_date", "bad_duration")


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def to_epoch(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware (UTC)")
    return int(value.timestamp())


def from_epoch(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, UTC)


@dataclass
class Client:
    id: int
    name: str
    currency: str
    is_active: bool
    address: str | None
    email: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass
class Person:
    id: int
    first_name: str
    last_name: str
    email: str
    roles: list[str]
    is_admin: bool
    is_contractor: bool
    is_active: bool
    hourly_rate: Decimal
    cost_rate: Decimal
    weekly_capacity_seconds: int
    timezone: str
    created_at: dt.datetime
    updated_at: dt.datetime
    deactivated_on: dt.date | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class Task:
    id: int
    name: str
    billable_by_default: bool
    hourly_rate: Decimal | None
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass
class Project:
    """`budget_kind` is hours|money|None; `budget` is hours or money in the client's currency."""

    id: int
    client_id: int
    name: str
    code: str
    is_active: bool
    is_billable: bool
    is_fixed_fee: bool
    hourly_rate: Decimal | None  # a project-wide rate; None means the task's or person's rate
    budget_kind: str | None
    budget: Decimal | None
    budget_is_monthly: bool
    fee: Decimal | None
    starts_on: dt.date | None
    ends_on: dt.date | None
    notes: str | None
    task_ids: list[int]
    person_ids: list[int]
    manager_id: int
    created_at: dt.datetime
    updated_at: dt.datetime


class Entry(NamedTuple):
    """One time entry. Timestamps are epoch seconds (UTC); `seconds` is always whole minutes."""

    id: int
    spent_date: dt.date
    person_id: int
    project_id: int
    task_id: int
    seconds: int
    billable: bool
    notes: str | None
    billable_rate: Decimal | None
    cost_rate: Decimal
    is_running: bool
    timer_started_at: int | None
    is_locked: bool  # approved and locked
    invoice_id: int | None
    created_at: int
    updated_at: int


@dataclass
class InvoiceLine:
    id: int
    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    project_id: int | None

    @property
    def amount(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(Decimal("0.01"))


@dataclass
class Payment:
    id: int
    invoice_id: int
    amount: Decimal
    paid_at: dt.datetime
    method: str
    notes: str | None
    recorded_by_id: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def paid_date(self) -> dt.date:
        return self.paid_at.date()


@dataclass
class Invoice:
    """`status` is the neutral status: draft|open|partial|overdue|paid|void.

    `state` is the lifecycle a provider stores (draft|open|paid|void); partial and overdue are
    open invoices seen from amounts and dates, exactly as Harvest derives them.
    """

    id: int
    number: str
    client_id: int
    project_id: int | None
    currency: str
    issue_date: dt.date
    due_date: dt.date
    state: str
    subject: str
    lines: list[InvoiceLine]
    payments: list[Payment]
    creator_id: int
    period_start: dt.date | None
    period_end: dt.date | None
    sent_at: dt.datetime | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    tax_percent: Decimal | None = None

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def tax_amount(self) -> Decimal:
        if self.tax_percent is None:
            return Decimal("0.00")
        return (self.subtotal * self.tax_percent / 100).quantize(Decimal("0.01"))

    @property
    def amount(self) -> Decimal:
        return self.subtotal + self.tax_amount

    @property
    def paid_amount(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal("0.00"))

    @property
    def due_amount(self) -> Decimal:
        if self.state in ("void", "draft"):
            return self.amount if self.state == "draft" else Decimal("0.00")
        return self.amount - self.paid_amount

    @property
    def paid_at(self) -> dt.datetime | None:
        return max((p.paid_at for p in self.payments), default=None) if self.state == "paid" else None

    def status(self, today: dt.date) -> str:
        if self.state in ("draft", "paid", "void"):
            return self.state
        if self.due_date < today:
            return "overdue"
        if self.paid_amount > 0:
            return "partial"
        return "open"


@dataclass(frozen=True)
class Deletion:
    """A hard delete, kept so providers with tombstones (FreshBooks, Productive) can show it."""

    resource: str  # "time_entry"
    id: int
    deleted_at: dt.datetime
    record: Any  # the record as it was just before deletion


@dataclass
class Agency:
    """The dataset plus its clock. Mutate only through the methods, under `lock`."""

    seed: int
    today: dt.date
    timezone: str
    name: str
    clock: Callable[[], dt.datetime]
    generated_at: dt.datetime
    clients: dict[int, Client]
    people: dict[int, Person]
    tasks: dict[int, Task]
    projects: dict[int, Project]
    entries: dict[int, Entry]
    invoices: dict[int, Invoice]
    deletions: list[Deletion] = field(default_factory=list)
    malformed: dict[int, str] = field(default_factory=dict)  # entry id -> one of MALFORMATIONS
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    version: int = 0  # bumped on every mutation; providers key their caches on it
    _next_entry_id: int = 0
    _last_stamp: int = 0
    _by_updated: list[tuple[int, int]] | None = field(default=None, repr=False)
    _by_date_desc: list[Entry] | None = field(default=None, repr=False)
    _date_version: int = -1
    _updated_version: int = -1

    # ---- clock ----------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The agency's clock, never earlier than any timestamp it has already handed out."""
        stamp = max(to_epoch(self.clock()), self._last_stamp, to_epoch(self.generated_at))
        self._last_stamp = stamp
        return from_epoch(stamp)

    # ---- reads ----------------------------------------------------------------------------
    @property
    def owner(self) -> Person:
        """The account owner: the admin who holds the demo tokens."""
        return next(p for p in self.people.values() if p.is_admin)

    def entries_by_date_desc(self) -> list[Entry]:
        """All entries, spent_date desc then id desc (Harvest's list order). Do not mutate.

        Built once per `version`, so a page request costs a slice, not a sort."""
        with self.lock:
            if self._date_version != self.version or self._by_date_desc is None:
                values = list(self.entries.values())
                values.sort(key=_date_id, reverse=True)
                self._by_date_desc, self._date_version = values, self.version
            return self._by_date_desc

    def entry_ids_updated_since(self, since: dt.datetime) -> list[int]:
        """Ids of entries with updated_at >= since (inclusive), oldest change first."""
        with self.lock:
            if self._updated_version != self.version or self._by_updated is None:
                self._by_updated = sorted((e.updated_at, e.id) for e in self.entries.values())
                self._updated_version = self.version
            start = bisect_left(self._by_updated, (to_epoch(since), -1))
            return [entry_id for _, entry_id in self._by_updated[start:]]

    def project_client(self, project_id: int) -> Client:
        return self.clients[self.projects[project_id].client_id]

    # ---- mutations ------------------------------------------------------------------------
    def _touch(self, old_stamp: int = 0) -> int:
        stamp = max(to_epoch(self.now()), old_stamp + 1)
        self._last_stamp = max(self._last_stamp, stamp)
        return stamp

    def _put(self, old: Entry | None, new: Entry | None) -> None:
        """Store a change and patch the indexes in place (a full re-sort of 200k entries after
        every edit would make a benchmark that edits between syncs measure the sandbox)."""
        if new is not None:
            self.entries[new.id] = new
        elif old is not None:
            del self.entries[old.id]
        if self._by_date_desc is not None and self._date_version == self.version:
            index = self._by_date_desc
            if old is not None:
                del index[bisect_left(index, _desc_key(old), key=_desc_key)]
            if new is not None:
                insort(index, new, key=_desc_key)
            self._date_version = self.version + 1
        if self._by_updated is not None and self._updated_version == self.version:
            pairs = self._by_updated
            if old is not None:
                del pairs[bisect_left(pairs, (old.updated_at, old.id))]
            if new is not None:
                insort(pairs, (new.updated_at, new.id))
            self._updated_version = self.version + 1
        self.version += 1

    def edit_entry(self, entry_id: int, **changes: Any) -> Entry:
        """Change fields of an entry (Entry field names); updated_at moves to now."""
        with self.lock:
            old = self._entry(entry_id)
            unknown = set(changes) - set(Entry._fields) - {"updated_at"}
            if unknown or "id" in changes:
                raise ValueError(f"cannot edit {sorted(unknown | ({'id'} & set(changes)))}")
            _check_seconds(changes.get("seconds", old.seconds))
            changes = {k: _coerce(k, v) for k, v in changes.items()}
            stamp = self._touch(old.updated_at)
            new = old._replace(**{**changes, "updated_at": stamp})
            self._put(old, new)
            return new

    def add_entry(
        self,
        *,
        project_id: int,
        person_id: int,
        task_id: int,
        spent_date: dt.date,
        seconds: int,
        notes: str | None = None,
        billable: bool | None = None,
    ) -> Entry:
        """Book a new entry now, with rates taken from project, task and person like the generator."""
        with self.lock:
            project, person, task = self.projects[project_id], self.people[person_id], self.tasks[task_id]
            _check_seconds(seconds)
            if billable is None:
                billable = project.is_billable and task.billable_by_default
            stamp = self._touch()
            self._next_entry_id += 1
            entry = Entry(
                id=self._next_entry_id, spent_date=_coerce("spent_date", spent_date), person_id=person_id,
                project_id=project_id, task_id=task_id, seconds=seconds, billable=billable, notes=notes,
                billable_rate=_billable_rate(project, task, person) if billable else None,
                cost_rate=person.cost_rate, is_running=False, timer_started_at=None, is_locked=False,
                invoice_id=None, created_at=stamp, updated_at=stamp,
            )
            self._put(None, entry)
            return entry

    def delete_entry(self, entry_id: int) -> Deletion:
        """Hard delete (as Harvest does), remembered in `deletions` with its time."""
        with self.lock:
            old = self._entry(entry_id)
            stamp = self._touch()
            self._put(old, None)
            self.malformed.pop(entry_id, None)
            deletion = Deletion("time_entry", entry_id, from_epoch(stamp), old)
            self.deletions.append(deletion)
            return deletion

    def backdate_entry(self, entry_id: int, updated_at: dt.datetime, **changes: Any) -> Entry:
        """Change an entry but give it an old updated_at: a change a naive cursor would miss."""
        with self.lock:
            old = self._entry(entry_id)
            changes = {k: _coerce(k, v) for k, v in changes.items()}
            new = old._replace(**changes, updated_at=to_epoch(updated_at))
            self._put(old, new)
            return new

    def malform_entry(self, entry_id: int, kind: str = "bad_date") -> Entry:
        """Make providers render this entry invalidly: `bad_date` (an impossible spent date) or
        `bad_duration` (a string where the duration number goes). It counts as an edit."""
        if kind not in MALFORMATIONS:
            raise ValueError(f"malformation must be one of {MALFORMATIONS}")
        with self.lock:
            entry = self.edit_entry(entry_id)
            self.malformed[entry_id] = kind
            return entry

    def _entry(self, entry_id: int) -> Entry:
        try:
            return self.entries[entry_id]
        except KeyError:
            raise KeyError(f"no time entry {entry_id}") from None


_date_id = attrgetter("spent_date", "id")


def _desc_key(entry: Entry) -> int:
    # ascending in this key == spent_date desc, id desc (ids stay below 10**11)
    return -(entry.spent_date.toordinal() * 10**11 + entry.id)


def _check_seconds(seconds: int) -> None:
    if not isinstance(seconds, int) or seconds < 0 or seconds % 60:
        raise ValueError("seconds must be a non-negative whole number of minutes")


def _coerce(name: str, value: Any) -> Any:
    """Accept JSON-ish values from the admin API (ISO dates, numbers as strings)."""
    if name == "spent_date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    if name in ("created_at", "updated_at", "timer_started_at") and isinstance(value, (str, dt.datetime)):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
        return to_epoch(value)
    if name in ("billable_rate", "cost_rate") and value is not None and not isinstance(value, Decimal):
        return Decimal(str(value))
    return value


def _billable_rate(project: Project, task: Task, person: Person) -> Decimal:
    return project.hourly_rate or task.hourly_rate or person.hourly_rate


# ---- generation ----------------------------------------------------------------------------

D = Decimal
NOTES = (
    "Homepage hero – second iteration",
    "Checkout flow: fixing cart rounding",
    "Weekly status call with client (dial-in +49 30 9018 2044)",
    "Paired with {colleague} on code review; merged the feature branch",
    "Überarbeitung der Startseite – Entwurf ✓",
    "Réunion de lancement avec l'équipe",
    "Wireframes for product detail page",
    "Reused the cart component we built for {other_client}",
    "Sprint planning",
    "Bugfix: login redirect loop",
    "Moodboards & typography exploration",
    "Content migration (batch 3/5)",
    "Accessibility audit – colour contrast [internal] {colleague_last}'s fix from last sprint broke it",
    "Deploy to staging, smoke tests (asked {colleague_email}, log at https://ci.nordwind.example/build/812)",
    "Copy edits for the pricing page",
    "数据迁移脚本 – review",
    "[internal] estimate was too low, discuss with PM",
    "[internal] rework caused by our own bug",
    "",
    None,
)
# Notes are written for colleagues, not clients: some name another client, a colleague
# (in full, by last name, by e-mail), a phone line or a link, or carry an inline internal
# aside. They are filled in per entry (no random draws, so the data set stays the same)
# from the entry's own agency, so a portal that publishes them unredacted leaks.
PAYMENT_METHODS = ("bank_transfer", "credit_card", "check")


# One agency, three tracker accounts: which clients and projects (by project code) each
# provider's account holds, and the id that account gave each client. Acme and Blue Heron
# are each tracked in two trackers under different ids, with different projects in each, as
# after a merger or a team that moved trackers; a portal combining both is then realistic
# and shows no project twice. Old Client LLC is inactive.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "harvest": {"client_ids": {5201001: 5201001, 5201002: 5201002, 5201005: 5201005},
                "projects": ("ACME-WEB", "ACME-SUP", "BH-BRAND", "OLD-MNT")},
    "freshbooks": {"client_ids": {5201002: 412207, 5201004: 412204},
                   "projects": ("BH-LAND", "CO-SHOP", "CO-INT")},
    "productive": {"client_ids": {5201001: 701101, 5201003: 701103},
                   "projects": ("ACME-APP", "ZN-INTRA")},
}


def generate_account(
    provider: str,
    seed: int = 1,
    today: dt.date | None = None,
    entries: int = 1500,
    months: int = 6,
    clock: Callable[[], dt.datetime] | None = None,
) -> Agency:
    """The agency's account in one tracker (see ACCOUNTS): its own clients, ids and projects,
    with `entries` time entries of its own. The same team and tasks work in every account."""
    try:
        account = ACCOUNTS[provider]
    except KeyError:
        raise ValueError(f"no sandbox account for {provider!r}; one of {', '.join(ACCOUNTS)}") from None
    offset = list(ACCOUNTS).index(provider) + 1
    return generate_agency(seed=seed * 10 + offset, today=today, entries=entries, months=months, clock=clock,
                           account=account)


def generate_accounts(
    seed: int = 1, today: dt.date | None = None, entries: int = 1500, months: int = 6,
    clock: Callable[[], dt.datetime] | None = None, providers: Any = None,
) -> dict[str, Agency]:
    """Every provider's account, one Agency each: what `Sandbox(generate_accounts(...))` serves."""
    return {p: generate_account(p, seed, today, entries, months, clock) for p in (providers or ACCOUNTS)}


def generate_agency(
    seed: int = 1,
    today: dt.date | None = None,
    entries: int = 1500,
    months: int = 6,
    clock: Callable[[], dt.datetime] | None = None,
    account: dict[str, Any] | None = None,
) -> Agency:
    """Build a deterministic agency for `seed`, with `entries` time entries over `months` months
    ending at `today`. `clock` is the "now" used for later mutations (default: the real clock).
    `account` (an ACCOUNTS entry) keeps only that tracker account's clients and projects."""
    # the agency's own date: just after midnight in Berlin it is already tomorrow, and a
    # tracker counts "this month" and "this week" by the account's date, not the server's
    today = today or dt.datetime.now(ZoneInfo(AGENCY_TIMEZONE)).date()
    rng = random.Random(seed)
    generated_at = dt.datetime.combine(today, dt.time(0, 0), UTC)  # every generated stamp is earlier
    window_start = _add_months(today.replace(day=1), -(months - 1))

    def stamp(day: dt.date, hour: int = 9) -> dt.datetime:
        at = dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)), UTC)
        return min(at, generated_at - dt.timedelta(minutes=1))

    before = window_start - dt.timedelta(days=60)
    clients = _clients(before, stamp)
    people = _people(before, today, stamp)
    tasks = _tasks(before, stamp)
    # budgets grow with the data, so a 200k-entry benchmark agency is not absurdly over budget
    projects = _projects(window_start, today, stamp, max(1, round(entries / 1500)), extra=account is not None)
    if account is not None:
        clients, projects = _select_account(clients, projects, account)
    for client in clients.values():
        client.updated_at = max(client.updated_at, client.created_at)

    agency = Agency(
        seed=seed, today=today, timezone=AGENCY_TIMEZONE, name="Nordwind Digital GmbH",
        clock=clock or utcnow, generated_at=generated_at, clients=clients, people=people, tasks=tasks,
        projects=projects, entries={}, invoices={},
    )
    _generate_entries(agency, rng, entries, window_start)
    _generate_invoices(agency, rng, stamp)
    agency._last_stamp = to_epoch(generated_at)
    return agency


def _select_account(
    clients: dict[int, Client], projects: dict[int, Project], account: dict[str, Any]
) -> tuple[dict[int, Client], dict[int, Project]]:
    """Keep one account's clients and projects, under the ids that account gave its clients."""
    ids: dict[int, int] = account["client_ids"]
    kept_clients = {}
    for neutral, own in ids.items():
        c = clients[neutral]
        c.id = own
        kept_clients[own] = c
    kept_projects = {}
    for pid, p in projects.items():
        if p.code in account["projects"]:
            p.client_id = ids[p.client_id]
            kept_projects[pid] = p
    return kept_clients, kept_projects


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _clients(before: dt.date, stamp: Callable[..., dt.datetime]) -> dict[int, Client]:
    rows = [
        ("Acme Robotics GmbH", "EUR", True, "Industriestraße 12\n70565 Stuttgart\nGermany", "ap@acme-robotics.example"),
        ("Blue Heron Studio", "USD", True, "410 Pine St, Suite 300\nSeattle, WA 98101", "ap@blueheron.example"),
        ("Zürich Nordlicht AG", "CHF", True, "Bahnhofstrasse 7\n8001 Zürich\nSchweiz", "finanzen@nordlicht.example"),
        ("Café Øresund ApS", "EUR", True, "Nyhavn 17\n1051 København\nDanmark", "regnskab@oresund.example"),
        ("Old Client LLC", "USD", False, None, "billing@oldclient.example"),
    ]
    out = {}
    for i, (name, currency, active, address, email) in enumerate(rows):
        created = stamp(before - dt.timedelta(days=40 * (len(rows) - i)), 10)
        updated = stamp(before + dt.timedelta(days=i * 7), 15) if i % 2 else created
        out[5201001 + i] = Client(5201001 + i, name, currency, active, address, email, created, updated)
    return out


def _people(before: dt.date, today: dt.date, stamp: Callable[..., dt.datetime]) -> dict[int, Person]:
    rows = [
        # first, last, roles, admin, contractor, active, rate, cost, capacity h/week, tz
        ("Alice", "Martin", ["Project lead", "Developer"], True, False, True, 150, 60, 40, "Europe/Berlin"),
        ("Bob", "Okafor", ["Developer"], False, False, True, 120, 55, 35, "Europe/London"),
        ("Chloé", "Dubois", ["Designer"], False, True, True, 140, 80, 20, "Europe/Paris"),
        ("Dmitri", "Ivanov", ["Project manager"], False, False, False, 125, 58, 35, "America/New_York"),
        ("Emma", "Schmidt", ["Developer"], False, False, True, 130, 57, 40, "Europe/Berlin"),
        ("Farid", "Haddad", ["Developer", "DevOps"], False, False, True, 135, 62, 40, "Europe/Berlin"),
        ("Greta", "Lindqvist", ["Designer"], False, False, True, 125, 54, 32, "Europe/Stockholm"),
        ("Hiroshi", "Tanaka", ["QA"], False, False, True, 100, 45, 40, "Asia/Tokyo"),
        ("Inès", "Moreau", ["Copywriter"], False, False, True, 95, 42, 24, "Europe/Paris"),
        ("José", "Núñez", ["Developer"], False, False, True, 115, 50, 40, "Europe/Madrid"),
        ("Katarzyna", "Wójcik", ["Project manager"], False, False, True, 125, 56, 40, "Europe/Warsaw"),
        ("Liam", "O'Connor", ["Developer"], False, False, True, 110, 48, 40, "Europe/Dublin"),
    ]
    out = {}
    for i, (first, last, roles, admin, contractor, active, rate, cost, hours, tz) in enumerate(rows):
        pid = 3101001 + i
        email = f"{_ascii(first)}.{_ascii(last)}@nordwind.example".lower().replace("'", "")
        created = stamp(before + dt.timedelta(days=i), 8)
        deactivated = None if active else today - dt.timedelta(days=45)
        updated = stamp(deactivated, 18) if deactivated else created
        out[pid] = Person(
            pid, first, last, email, roles, admin, contractor, active, D(rate), D(cost), hours * 3600, tz,
            created, updated, deactivated,
        )
    return out


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _tasks(before: dt.date, stamp: Callable[..., dt.datetime]) -> dict[int, Task]:
    rows = [
        ("Design", True, D(140), True), ("Development", True, D(150), True),
        ("Project Management", True, D(125), True), ("Internal Meeting", False, None, True),
        ("QA & Testing", True, D(110), True), ("Copywriting", True, D(95), True),
        ("Legacy Support", True, D(100), False),
    ]
    out = {}
    for i, (name, billable, rate, active) in enumerate(rows):
        created = stamp(before, 8)
        out[8301001 + i] = Task(8301001 + i, name, billable, rate, active, created, created)
    return out


def _projects(
    window_start: dt.date, today: dt.date, stamp: Callable[..., dt.datetime], scale: int, extra: bool = False
) -> dict[int, Project]:
    end_old = window_start + dt.timedelta(days=50)
    rows = [
        # client, name, code, billable, fixed fee, rate, budget kind, budget, monthly, fee, starts, ends, tasks, people
        (5201001, "Acme Website Redesign", "ACME-WEB", True, False, D(150), "hours", D(1200), False, None,
         window_start, _add_months(today.replace(day=1), 3) - dt.timedelta(days=1), [1, 2, 3, 4, 5], [1, 2, 3, 5, 8]),
        (5201001, "Acme Support Retainer", "ACME-SUP", True, False, None, "hours", D(40), True, None,
         window_start - dt.timedelta(days=120), None, [2, 3, 4, 5], [1, 2, 6, 10]),
        (5201002, "Blue Heron Brand Refresh", "BH-BRAND", True, True, None, "money", D(60000), False, D(60000),
         window_start, None, [1, 3, 4, 6], [3, 7, 9, 4, 11]),
        (5201003, "Zürich Intranet Migration", "ZN-INTRA", True, False, D(130), None, None, False, None,
         window_start + dt.timedelta(days=30), None, [2, 3, 4, 5], [5, 6, 10, 11, 12]),
        (5201004, "Café Øresund Webshop", "CO-SHOP", True, False, None, "money", D(8000), True, None,
         window_start, None, [1, 2, 5, 6], [2, 7, 9, 12, 4]),
        (5201004, "Øresund internal tooling", "CO-INT", False, False, None, None, None, False, None,
         window_start, None, [2, 4], [6, 12]),
        (5201005, "Old Client Maintenance", "OLD-MNT", True, False, D(100), "hours", D(100), False, None,
         window_start - dt.timedelta(days=200), end_old, [2, 7], [2, 4, 10]),
    ]
    if extra:
        # only in the per-tracker accounts (generate_account): the second tracker's projects
        # of clients tracked twice; the single shared agency stays as it always was
        rows += [
            (5201001, "Acme Mobile App", "ACME-APP", True, False, D(140), "hours", D(600), False, None,
             window_start + dt.timedelta(days=20), None, [1, 2, 5], [5, 6, 8, 12]),
            (5201002, "Blue Heron Campaign Landing Pages", "BH-LAND", True, False, None, "hours", D(150), False, None,
             window_start + dt.timedelta(days=45), None, [1, 2, 6], [3, 7, 9]),
        ]
    out = {}
    for i, row in enumerate(rows):
        client, name, code, billable, fixed, rate, kind, budget, monthly, fee, starts, ends, tasks, team = row
        budget = budget * scale if budget is not None else None
        fee = fee * scale if fee is not None else None
        pid = 14501001 + i
        active = ends is None or ends >= today
        created = stamp(starts - dt.timedelta(days=5), 9)
        updated = stamp(ends + dt.timedelta(days=1), 17) if not active else stamp(starts + dt.timedelta(days=3), 11)
        out[pid] = Project(
            pid, client, name, code, active, billable, fixed, rate, kind, budget, monthly, fee, starts, ends,
            "20 hours per month, resets on the 1st." if monthly and kind == "hours" else ("Phase 1" if i == 0 else None),
            [8301000 + t for t in tasks], [3101000 + p for p in team], 3101000 + team[0], created, updated,
        )
    return out


def _generate_entries(agency: Agency, rng: random.Random, count: int, window_start: dt.date) -> None:
    """The hot loop for 200k entries: precompute per-project choices, draw with one rng."""
    today, people, tasks = agency.today, agency.people, agency.tasks
    days = (today - window_start).days + 1
    all_days = [window_start + dt.timedelta(days=i) for i in range(days)]
    choices = []  # (project, [(day index range)], eligible people per day-split, tasks)
    for project in agency.projects.values():
        first = max(0, (project.starts_on - window_start).days) if project.starts_on else 0
        last = min(days - 1, (project.ends_on - window_start).days) if project.ends_on else days - 1
        if first > last:
            continue
        choices.append((project, first, last, [tasks[t] for t in project.task_ids if tasks[t].is_active]))
    weights = [3 if p.is_active else 1 for p, *_ in choices]
    lock_before = today - dt.timedelta(days=21)
    minute_steps = list(range(15, 481, 3))
    base_id = 2101000000
    epoch_days = {d: to_epoch(dt.datetime.combine(d, dt.time(7, 0), UTC)) for d in all_days}
    cap = to_epoch(agency.generated_at) - 60
    rate_cache: dict[tuple[int, int, int], Decimal] = {}
    picks = rng.choices(range(len(choices)), weights=weights, k=count)
    out = agency.entries
    # ids grow with the booked day, like a real tracker's; it also makes the date index a cheap sort
    fractions = sorted(rng.random() for _ in range(count))
    for n in range(count):
        project, first, last, project_tasks = choices[picks[n]]
        day_index = first + int(fractions[n] * (last - first + 1))
        day = all_days[day_index]
        if day.weekday() >= 5 and rng.random() < 0.8:  # little weekend work
            day_index = max(first, day_index - day.weekday() + 4)
            day = all_days[day_index]
        person = people[project.person_ids[rng.randrange(len(project.person_ids))]]
        if person.deactivated_on and day >= person.deactivated_on:
            person = people[project.manager_id] if people[project.manager_id].is_active else people[3101001]
        task = project_tasks[rng.randrange(len(project_tasks))]
        billable = project.is_billable and task.billable_by_default
        key = (project.id, task.id, person.id)
        rate = rate_cache.get(key)
        if rate is None:
            rate = rate_cache[key] = _billable_rate(project, task, person)
        created = min(epoch_days[day] + rng.randrange(12 * 3600), cap)
        edited = rng.random() < 0.15
        updated = min(created + rng.randrange(1, 20 * 86400), cap) if edited else created
        entry_id = base_id + n + 1
        minutes = minute_steps[rng.randrange(len(minute_steps))]
        note = NOTES[rng.randrange(len(NOTES))]
        if note and "{" in note:
            note = _fill_note(note, agency, project, person)
        out[entry_id] = Entry(
            entry_id, day, person.id, project.id, task.id, minutes * 60,
            billable, note, rate if billable else None, person.cost_rate,
            False, None, day < lock_before, None, created, updated,
        )
    agency._next_entry_id = base_id + count
    _add_running_timer(agency, cap)


def _fill_note(note: str, agency: Agency, project: Project, person: Person) -> str:
    """A note template filled with another client's name and a colleague of `person`."""
    clients = sorted(agency.clients)
    other = agency.clients[clients[(clients.index(project.client_id) + 1) % len(clients)]] if project.client_id in agency.clients else None
    people = sorted(agency.people)
    colleague = agency.people[people[(people.index(person.id) + 1) % len(people)]]
    return note.format(
        other_client=other.name if other else "another client", colleague=colleague.name,
        colleague_last=colleague.last_name, colleague_email=colleague.email,
    )


def _add_running_timer(agency: Agency, cap: int) -> None:
    """The newest entry of an active person on today's date gets a running timer."""
    if not agency.entries:
        return
    latest = max(agency.entries.values(), key=lambda e: (e.spent_date, e.id))
    person = agency.people[latest.person_id]
    if not person.is_active:
        return
    agency.entries[latest.id] = latest._replace(
        spent_date=agency.today, is_running=True, timer_started_at=cap, is_locked=False, updated_at=max(latest.updated_at, cap),
        created_at=min(latest.created_at, cap),
    )


def _generate_invoices(agency: Agency, rng: random.Random, stamp: Callable[..., dt.datetime]) -> None:
    """One invoice per billable project and past month, plus states assigned so that every status
    exists: the newest is a draft, then open-not-due, partial, overdue, void; the rest are paid."""
    today = agency.today
    month_start = today.replace(day=1)
    totals: dict[tuple[int, dt.date], Decimal] = {}
    by_key: dict[tuple[int, dt.date], list[int]] = {}
    for entry in agency.entries.values():
        if not entry.billable or entry.spent_date >= month_start or entry.is_running:
            continue
        key = (entry.project_id, entry.spent_date.replace(day=1))
        totals[key] = totals.get(key, D(0)) + entry.billable_rate * entry.seconds / 3600
        by_key.setdefault(key, []).append(entry.id)
    keys = sorted(totals, key=lambda k: (k[1], k[0]))
    # Every status must exist. Draft/open/partial come from last month (so open ones are not due
    # yet), overdue from an older month with short terms, void from what is left; the rest paid.
    last_month = _add_months(month_start, -1)
    wanted = [("draft", lambda m: m == last_month), ("open", lambda m: m == last_month),
              ("partial", lambda m: m == last_month), ("overdue", lambda m: m < last_month),
              ("void", lambda m: m < last_month)]
    states: dict[tuple[int, dt.date], str] = {}
    for state, fits in wanted:
        for key in sorted(keys, key=lambda k: (k[1], k[0]), reverse=True):
            if key not in states and fits(key[1]):
                states[key] = state
                break
    owner = agency.owner
    payment_id = 10336000
    line_id = 53400000
    for i, key in enumerate(keys):
        project_id, month = key
        project = agency.projects[project_id]
        client = agency.clients[project.client_id]
        status = states.get(key, "paid")
        period_end = _add_months(month, 1) - dt.timedelta(days=1)
        issue = min(period_end + dt.timedelta(days=3), today)
        due = issue + dt.timedelta(days=14 if status == "overdue" else 30)
        subtotal = totals[key].quantize(D("0.01"))
        line_id += 1
        quantity = (sum(agency.entries[e].seconds for e in by_key[key]) / D(3600)).quantize(D("0.01"))
        unit = (subtotal / quantity).quantize(D("0.01")) if quantity else subtotal
        lines = [InvoiceLine(line_id, "Service", f"{project.name} – {month:%B %Y}", quantity, unit, project_id)]
        if (quantity * unit).quantize(D("0.01")) != subtotal:  # keep the invoice total exact
            line_id += 1
            lines.append(InvoiceLine(line_id, "Service", "Rounding", D(1), subtotal - (quantity * unit).quantize(D("0.01")), project_id))
        created = stamp(issue, 8)
        invoice = Invoice(
            id=40100001 + i, number=f"{issue.year}-{i + 1:04d}", client_id=client.id, project_id=project_id,
            currency=client.currency, issue_date=issue, due_date=due,
            state={"draft": "draft", "void": "void", "paid": "paid"}.get(status, "open"),
            subject=f"{project.name} – {month:%B %Y}", lines=lines, payments=[], creator_id=owner.id,
            period_start=month, period_end=period_end, sent_at=None if status == "draft" else stamp(issue, 9),
            closed_at=stamp(issue + dt.timedelta(days=5), 12) if status == "void" else None,
            created_at=created, updated_at=created, tax_percent=D("19") if client.currency == "EUR" else None,
        )
        if status in ("paid", "partial"):
            amount = invoice.amount if status == "paid" else (invoice.amount / 2).quantize(D("0.01"))
            paid_on = min(issue + dt.timedelta(days=rng.randint(3, 25)), today - dt.timedelta(days=1))
            paid_on = max(paid_on, issue)
            payment_id += 1
            paid_at = stamp(paid_on, 10)
            invoice.payments.append(Payment(
                payment_id, invoice.id, amount, paid_at, PAYMENT_METHODS[i % 3],
                "SEPA transfer" if client.currency == "EUR" else None, owner.id, paid_at, paid_at,
            ))
        invoice.updated_at = max([invoice.created_at, *(p.updated_at for p in invoice.payments),
                                  *([invoice.closed_at] if invoice.closed_at else [])])
        agency.invoices[invoice.id] = invoice
        if status not in ("void",):
            for entry_id in by_key[key]:
                entry = agency.entries[entry_id]
                agency.entries[entry_id] = entry._replace(invoice_id=invoice.id, is_locked=True)


__all__ = [
    "ACCOUNTS", "Agency", "generate_account", "generate_accounts", "Client", "Deletion", "Entry", "Invoice", "InvoiceLine", "MALFORMATIONS", "Payment", "Person",
    "Project", "Task", "from_epoch", "generate_agency", "to_epoch", "utcnow",
]
