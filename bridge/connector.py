"""The port every connector implements: resources declared as data, pages of raw items out.

A connector knows its provider's wire format and nothing of the store or portals. The
sync engine (bridge/sync.py) drives it: it asks for pages, normalizes each raw item with
the resource's pure normalizer, quarantines what fails, and commits page by page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from bridge.http import HttpClient
from bridge.models import Synced


@dataclass(frozen=True)
class Context:
    """What a pure normalizer may know besides the raw item."""

    source: str
    tz: ZoneInfo = ZoneInfo("UTC")
    today: dt.date | None = None


Normalizer = Callable[[Mapping[str, Any], Context], "Synced | list[Synced] | None"]


@dataclass(frozen=True)
class Resource:
    """One provider endpoint, declared as data.

    Attributes:
        name: our resource name, also the cursor's key ("time_entries").
        path: relative to the base URL; a child resource's path holds `{parent_id}`.
        items_key: where the list sits in a page body (a dotted path), None for JSON:API `data`.
        normalize: pure function raw item -> record(s); None skips an item on purpose.
        model: the table the records go to (deletion reconciliation works on it).
        incremental: the endpoint takes an updated-since filter.
        parent: for a child resource, the parent resource whose changed rows it is fetched for.
        reconcile: "window" (ids of records dated within the reconcile window), "all" (every
            id), or None (deletions come another way, or never happen).
        params: fixed query parameters.
        parent_key: on a child's model, the column holding the parent's id; children the
            provider no longer lists for a re-fetched parent are marked deleted.
        parent_filter: on a child, which changed parent rows can have children at all (an
            unpaid invoice has no payments): the others cost no request.
    """

    name: str
    path: str
    items_key: str | None
    normalize: Normalizer
    model: type[Synced]
    incremental: bool = True
    parent: str | None = None
    reconcile: str | None = "all"
    params: Mapping[str, Any] = field(default_factory=dict)
    parent_key: str | None = None
    parent_filter: Callable[[Any], bool] | None = None


@dataclass(frozen=True)
class Page:
    """One decoded page: its raw items and how to continue after it."""

    items: list[Mapping[str, Any]]
    resume: str | None = None  # opaque; None on the last page


@dataclass(frozen=True)
class Access:
    """What a working token may read, for `bridge check`.

    Attributes:
        who: the identity the token belongs to, as the provider names it.
        facts: the provider's own permission flags, verbatim names (Harvest `is_admin`,
            `can_see_rates`, `access_roles`).
        rates_visible: whether rates and money amounts come through; None when unknown.
        readable: resource -> True (listed) | False (403: not permitted).
        advice: resource -> what permission it needs, for the unreadable ones.
    """

    who: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    rates_visible: bool | None = None
    readable: Mapping[str, bool] = field(default_factory=dict)
    advice: Mapping[str, str] = field(default_factory=dict)


class Connector(Protocol):
    kind: ClassVar[str]
    resources: ClassVar[Mapping[str, Resource]]
    name: str
    http: HttpClient  # the shared client: request counts and the provider's clock

    @property
    def requests(self) -> int:
        """HTTP requests made so far (the benchmark compares this with the minimum)."""

    def check(self) -> None:
        """The cheapest authenticated call; raises AuthError with advice."""

    def pages(
        self,
        resource: str,
        since: dt.datetime | None,
        *,
        resume: str | None = None,
        parent_id: str | None = None,
    ) -> Iterator[Page]:
        """Pages of raw items updated at or after `since` (all when None)."""

    def ids(self, resource: str, window_start: dt.date | None) -> Iterator[str]:
        """Every id the provider still has (dated on/after window_start when given)."""

    def deleted_ids(self, resource: str, since: dt.datetime | None) -> Iterator[str]:
        """Ids the provider reports deleted since `since`, where it has such a feed."""

    def close(self) -> None: ...


class SettingsModel(BaseModel):
    """Base for a connector's settings; secrets arrive resolved from the environment."""

    model_config = {"extra": "forbid"}
