"""The normalized store: SQLModel tables every connector writes and every portal reads.

Units are explicit (DESIGN.md invariant 4): durations are integer seconds, money is
Decimal beside an ISO currency code, `*_date` is a calendar date in the agency's time
zone, `*_at` is an aware UTC datetime. A provider's missing concept is None, never 0.

Every synced row carries `source` (the config instance name), `source_id` (the
provider's id as a string), the provider's `updated_at`, our `synced_at` and
`is_deleted` (deletions are soft, so a portal can say "1 entry removed").
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar, Optional

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from pydantic import BaseModel, ConfigDict, create_model
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 4  # 2: description_reviews; 3: scheduler_processes and scheduled_jobs (issue 16); 4: portal_links.published_fingerprint


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _utc(**kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kw)


def _money(**kw: Any) -> Any:
    return Field(default=None, max_digits=18, decimal_places=4, **kw)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Synced(SQLModel):
    """Columns shared by every table a connector writes."""

    id: Optional[int] = Field(default=None, primary_key=True)
    source: str = Field(index=True, max_length=100)
    source_id: str = Field(max_length=100)
    updated_at: Optional[dt.datetime] = _utc()
    synced_at: Optional[dt.datetime] = _utc()
    is_deleted: bool = False

    resource: ClassVar[str] = ""


def _natural_key(table: str) -> tuple[Any, ...]:
    return (sa.UniqueConstraint("source", "source_id", name=f"uq_{table}_source_id"),)


class Client(Synced, table=True):
    __tablename__ = "clients"
    __table_args__ = _natural_key("clients")
    resource: ClassVar[str] = "clients"

    name: str
    currency: Optional[str] = Field(default=None, max_length=3)
    is_active: bool = True


class Project(Synced, table=True):
    __tablename__ = "projects"
    __table_args__ = _natural_key("projects")
    resource: ClassVar[str] = "projects"

    client_source_id: Optional[str] = Field(default=None, index=True)
    name: str
    code: Optional[str] = None
    is_active: bool = True
    is_billable: bool = True
    currency: Optional[str] = Field(default=None, max_length=3)
    # budget_kind: "hours" | "money" | None (no budget). budget_period: "total" | "monthly".
    budget_kind: Optional[str] = None
    budget_period: Optional[str] = None
    budget_seconds: Optional[int] = None
    budget_money: Optional[Decimal] = _money()
    # False when the provider has a money budget this token may not read: the portal says
    # "not visible with this token" rather than inventing a zero.
    budget_visible: bool = True
    starts_on: Optional[dt.date] = None
    ends_on: Optional[dt.date] = None
    billing_method: Optional[str] = None
    hourly_rate: Optional[Decimal] = _money()
    fee: Optional[Decimal] = _money()
    notes: Optional[str] = None


class Person(Synced, table=True):
    __tablename__ = "people"
    __table_args__ = _natural_key("people")
    resource: ClassVar[str] = "people"

    first_name: str = ""
    last_name: str = ""
    email: Optional[str] = None
    role: Optional[str] = None
    is_active: bool = True
    is_contractor: bool = False
    default_hourly_rate: Optional[Decimal] = _money()
    cost_rate: Optional[Decimal] = _money()


class Task(Synced, table=True):
    __tablename__ = "tasks"
    __table_args__ = _natural_key("tasks")
    resource: ClassVar[str] = "tasks"

    name: str
    is_billable_default: bool = True
    is_active: bool = True
    default_hourly_rate: Optional[Decimal] = _money()


class TaskAssignment(Synced, table=True):
    """A task on a project, where a provider keeps per-task budgets and rates."""

    __tablename__ = "task_assignments"
    __table_args__ = _natural_key("task_assignments")
    resource: ClassVar[str] = "task_assignments"

    project_source_id: str = Field(index=True)
    task_source_id: str
    is_billable: bool = True
    is_active: bool = True
    budget_seconds: Optional[int] = None
    hourly_rate: Optional[Decimal] = _money()


class TimeEntry(Synced, table=True):
    __tablename__ = "time_entries"
    __table_args__ = (
        *_natural_key("time_entries"),
        sa.Index("ix_time_entries_client_date", "source", "client_source_id", "spent_date"),
    )
    resource: ClassVar[str] = "time_entries"

    client_source_id: Optional[str] = None
    project_source_id: Optional[str] = Field(default=None, index=True)
    person_source_id: Optional[str] = None
    task_source_id: Optional[str] = None
    spent_date: dt.date
    seconds: int
    is_billable: bool = False
    is_running: bool = False
    is_invoiced: bool = False
    # Approved or locked in the tracker; the review gate publishes only these.
    is_approved: bool = False
    invoice_source_id: Optional[str] = None
    notes: Optional[str] = None
    phase: Optional[str] = None
    tags: Optional[str] = None  # comma-separated tag names, where the provider has tags
    billable_rate: Optional[Decimal] = _money()
    cost_rate: Optional[Decimal] = _money()
    billable_amount: Optional[Decimal] = _money()
    currency: Optional[str] = Field(default=None, max_length=3)


INVOICE_STATUSES = ("draft", "open", "partial", "paid", "overdue", "void")


class Invoice(Synced, table=True):
    __tablename__ = "invoices"
    __table_args__ = _natural_key("invoices")
    resource: ClassVar[str] = "invoices"

    client_source_id: Optional[str] = Field(default=None, index=True)
    number: Optional[str] = None
    issue_date: Optional[dt.date] = None
    due_date: Optional[dt.date] = None
    paid_date: Optional[dt.date] = None
    period_start: Optional[dt.date] = None
    period_end: Optional[dt.date] = None
    amount: Decimal = _money()
    due_amount: Decimal = _money()
    currency: str = Field(max_length=3)
    # Provider state mapped onto INVOICE_STATUSES. "overdue" is re-derived from due_date
    # at read time too, since a stored row cannot know that a day has passed.
    status: str
    subject: Optional[str] = None


class Payment(Synced, table=True):
    __tablename__ = "payments"
    __table_args__ = _natural_key("payments")
    resource: ClassVar[str] = "payments"

    invoice_source_id: str = Field(index=True)
    amount: Decimal = _money()
    currency: Optional[str] = Field(default=None, max_length=3)
    paid_date: Optional[dt.date] = None


SYNCED_MODELS: tuple[type[Synced], ...] = (
    Client, Project, Person, Task, TaskAssignment, TimeEntry, Invoice, Payment,
)

_RECORD_MODELS: dict[type[SQLModel], type[BaseModel]] = {}


def record_model(table: type[SQLModel]) -> type[BaseModel]:
    """A plain pydantic twin of a table model: same fields, same constraints.

    Building a sqlmodel table instance routes every attribute through SQLAlchemy's
    instrumentation (about 200 us a record); the twin validates in a few microseconds.
    Normalizers return twins, and the store writes their fields as rows.
    """
    twin = _RECORD_MODELS.get(table)
    if twin is None:
        fields = {name: (f.annotation, f) for name, f in table.model_fields.items()}
        twin = create_model(f"{table.__name__}Record", __base__=_Record, **fields)  # type: ignore[call-overload]
        twin.__table_model__ = table  # type: ignore[attr-defined]
        twin.resource = getattr(table, "resource", "")  # type: ignore[attr-defined]
        _RECORD_MODELS[table] = twin
    return twin


class _Record(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True, validate_assignment=False)


def table_of(record: Any) -> type[SQLModel]:
    """The table a record (a table instance or its twin) belongs to."""
    cls = type(record)
    return getattr(cls, "__table_model__", cls)


# --- bookkeeping tables -------------------------------------------------------------


class SyncCursor(SQLModel, table=True):
    """How far a resource has synced. `value` only moves once its data is committed.

    While a run pages through a resource, `resume` holds the next page to ask for and
    `pending` the highest `updated_at` committed so far, both written in the same
    transaction as that page's rows; a killed run resumes there instead of starting over.
    """

    __tablename__ = "sync_cursors"
    source: str = Field(primary_key=True, max_length=100)
    resource: str = Field(primary_key=True, max_length=100)
    value: Optional[dt.datetime] = _utc()
    resume: Optional[str] = None
    pending: Optional[dt.datetime] = _utc()
    run_started_at: Optional[dt.datetime] = _utc()
    reconciled_at: Optional[dt.datetime] = _utc()
    updated_at: Optional[dt.datetime] = _utc()


class Quarantine(SQLModel, table=True):
    """A record that failed validation: kept with the reason, never silently dropped."""

    __tablename__ = "quarantine"
    __table_args__ = (
        sa.UniqueConstraint("source", "resource", "source_id", name="uq_quarantine_record"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    source: str = Field(index=True, max_length=100)
    resource: str = Field(max_length=100)
    source_id: str = Field(max_length=100)
    field: str = ""
    reason: str
    payload: str  # the raw record as JSON, for the person fixing it
    first_seen_at: Optional[dt.datetime] = _utc()
    last_seen_at: Optional[dt.datetime] = _utc()


class SyncRun(SQLModel, table=True):
    """One run of one source: what it did and how it ended, for `bridge status`."""

    __tablename__ = "sync_runs"
    id: Optional[int] = Field(default=None, primary_key=True)
    source: str = Field(index=True, max_length=100)
    started_at: dt.datetime = _utc()
    finished_at: Optional[dt.datetime] = _utc()
    status: str = "running"  # running | ok | failed
    new: int = 0
    updated: int = 0
    deleted: int = 0
    quarantined: int = 0
    requests: int = 0
    error: Optional[str] = None
    changed_clients: Optional[str] = None  # JSON list of client source ids touched


class SourceSecret(SQLModel, table=True):
    """Secrets a provider rotates on us (FreshBooks refresh tokens), persisted atomically.

    Only rotating credentials live here; static tokens stay in the environment.
    """

    __tablename__ = "source_secrets"
    source: str = Field(primary_key=True, max_length=100)
    name: str = Field(primary_key=True, max_length=100)
    value: str
    updated_at: Optional[dt.datetime] = _utc()


class PortalLink(SQLModel, table=True):
    """A portal client's unguessable token and its current signed link."""

    __tablename__ = "portal_links"
    client_key: str = Field(primary_key=True, max_length=100)
    token: str = Field(max_length=64)
    url: Optional[str] = None
    expires_at: Optional[dt.datetime] = _utc()
    published_at: Optional[dt.datetime] = _utc()
    data_as_of: Optional[dt.datetime] = _utc()
    passphrase: Optional[str] = None
    snapshot: Optional[str] = None  # JSON of entry fingerprints, for the change note
    # What the last publish was made from (data, settings, link window): `bridge run` skips
    # a client whose inputs are unchanged, also right after a restart
    published_fingerprint: Optional[str] = Field(default=None, max_length=64)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    id: Optional[int] = Field(default=None, primary_key=True)
    at: dt.datetime = _utc()
    client_key: Optional[str] = Field(default=None, index=True, max_length=100)
    action: str  # publish | link_issued | link_revoked | passphrase_rotated | alert_sent | access
    object_key: Optional[str] = None
    remote_ip: Optional[str] = None
    user_agent: Optional[str] = None
    status: Optional[int] = None
    link_valid: Optional[bool] = None
    detail: Optional[str] = None


class AlertCrossing(SQLModel, table=True):
    """A budget threshold already alerted for a project in a budget period."""

    __tablename__ = "alert_crossings"
    id: Optional[int] = Field(default=None, primary_key=True)
    client_key: str = Field(max_length=100)
    project_key: str = Field(max_length=200)  # "<source>:<project source id>"
    threshold: int
    period: str  # "total" or "YYYY-MM" for monthly budgets
    budget: str  # the budget it was crossed against; a raised budget re-arms
    sent_at: Optional[dt.datetime] = _utc()


class SchedulerProcess(SQLModel, table=True):
    """A `bridge run`, `beat` or `worker` process and its heartbeat (bridge.heartbeat).

    The leader lock decides who schedules; this row only tells `bridge status` and the
    other processes who that is, with what configuration, and whether it is alive.
    """

    __tablename__ = "scheduler_processes"
    id: str = Field(primary_key=True, max_length=120)  # "<host>:<pid>:<random>"
    host: str = Field(max_length=255)
    pid: int
    mode: str = Field(max_length=20)  # run | beat | worker
    role: str = Field(max_length=20)  # leader | standby | worker | stopped
    fingerprint: str = Field(max_length=64)  # of the effective configuration, secrets excluded
    config_keys: str  # JSON {key: hash of its value}: names what differs, reveals no value
    heartbeat_every: float  # seconds; the row is dead after a few missed beats
    started_at: Optional[dt.datetime] = _utc()
    heartbeat_at: Optional[dt.datetime] = _utc()
    leader_since: Optional[dt.datetime] = _utc()
    stopped_at: Optional[dt.datetime] = _utc()
    note: Optional[str] = None  # why it stopped, or what it waits for


class ScheduledJob(SQLModel, table=True):
    """The leader's schedule, so a new leader continues it instead of starting over.

    Only the leader writes, and only rows of its own jobs; APScheduler itself keeps its
    jobs in memory (bridge.scheduler explains why).
    """

    __tablename__ = "scheduled_jobs"
    id: str = Field(primary_key=True, max_length=200)  # "sync:<source>", "links:refresh", ...
    schedule: str  # the trigger's description: a changed schedule starts afresh
    last_run_at: Optional[dt.datetime] = _utc()
    next_run_at: Optional[dt.datetime] = _utc()
    written_by: Optional[str] = Field(default=None, max_length=120)
    updated_at: Optional[dt.datetime] = _utc()


class DescriptionReview(SQLModel, table=True):
    """A description the last publish of a client redacted or withheld (`bridge review`).

    Replaced at every publish of the client. It says where (entry, date, project, person
    as displayed) and why ("another client's name (harvest:2)"), never the removed text.
    """

    __tablename__ = "description_reviews"
    id: Optional[int] = Field(default=None, primary_key=True)
    client_key: str = Field(index=True, max_length=100)
    published_at: dt.datetime = _utc()
    source: str = Field(max_length=100)
    entry_source_id: str = Field(max_length=100)
    spent_date: dt.date
    project: str
    person: str
    action: str = Field(max_length=20)  # redacted | withheld
    reasons: str  # "; "-joined


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    id: int = Field(default=1, primary_key=True)
    version: int
    migrated_at: Optional[dt.datetime] = _utc()
