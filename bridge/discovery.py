"""What a provider account holds: its clients and their projects, with ids, budgets and state.

`bridge discover` prints this so nobody has to call an API by hand to find client ids, and
`bridge check` / `bridge publish` use it to catch a configured id the provider does not know
(which would otherwise publish an empty "No projects to show yet" portal without a word).

It reads through the connector's own `clients` and `projects` resources and normalizers,
the same code the sync uses, so the ids shown are exactly the ids a config must name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bridge.config import ClientConfig, Config, SourceConfig
from bridge.connector import Connector, Context
from bridge.errors import BridgeError, ConfigError
from bridge.models import Client


@dataclass(frozen=True)
class FoundProject:
    id: str
    name: str
    active: bool
    budget: str  # "120 h", "60000.00 EUR", "20 h / month", "none"


@dataclass
class FoundClient:
    source: str
    id: str
    name: str
    active: bool
    currency: str | None
    projects: list[FoundProject] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def budget_text(p: Any, client_currency: str | None = None) -> str:
    """A project record's budget in words (records are the normalizers' output, see bridge.models)."""
    if p.budget_kind == "hours" and p.budget_seconds is not None:
        hours = Decimal(p.budget_seconds) / 3600
        text = f"{hours.normalize():f} h"
    elif p.budget_kind == "money" and p.budget_money is not None:
        code = p.currency or client_currency
        text = f"{p.budget_money:.2f}" + (f" {code}" if code else "")
    elif p.budget_kind == "money" and not p.budget_visible:
        return "money budget not visible with this token"
    else:
        return "none"
    return text + (" / month" if p.budget_period == "monthly" else "")


def _records(connector: Connector, resource: str, ctx: Context) -> list[Any]:
    res = connector.resources[resource]
    out: list[Any] = []
    for page in connector.pages(resource, None):
        for raw in page.items:
            try:
                rec = res.normalize(raw, ctx)
            except BridgeError:
                continue  # a record the sync would quarantine; discovery lists the rest
            if rec is None:
                continue
            out.extend(rec if isinstance(rec, list) else [rec])
    return out


def discover(connector: Connector, source: SourceConfig, tz: ZoneInfo) -> list[FoundClient]:
    """Every client of one source with its projects, active first, then by name."""
    ctx = Context(source=source.name, tz=tz, today=dt.datetime.now(tz).date())
    clients = {c.source_id: FoundClient(source.name, c.source_id, c.name, c.is_active, c.currency)
               for c in _records(connector, "clients", ctx)}
    for p in _records(connector, "projects", ctx):
        owner = clients.get(p.client_source_id or "")
        if owner is None:  # a project without a client (internal) or of a deleted client
            owner = clients.setdefault("", FoundClient(source.name, "", "(no client)", True, None))
        owner.projects.append(FoundProject(p.source_id, p.name, p.is_active, budget_text(p, owner.currency)))
    for c in clients.values():
        c.projects.sort(key=lambda p: (not p.active, p.name.lower()))
    return sorted(clients.values(), key=lambda c: (c.id == "", not c.active, c.name.lower()))


# --- configured ids the provider does not know ------------------------------------------------


def unknown_ids(config: Config, source: str, known: Iterable[str]) -> list[str]:
    """One line per configured client id of `source` that is not among `known`, naming the client."""
    have = set(known)
    out = []
    for c in config.clients:
        for cid in c.sources.get(source, []):
            if str(cid) not in have:
                out.append(f"client {c.key!r} ({c.name}): {source} has no client with id {cid!r}; "
                           f"`bridge discover --source {source}` lists the ids it has")
    return out


def never_synced(store: Any, client: ClientConfig) -> list[str]:
    """The client's sources from which the store holds no client at all yet (first sync pending)."""
    t = Client.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        synced = {r[0] for r in conn.execute(sa.select(t.c.source).where(t.c.source.in_(list(client.sources))).distinct())}
    return [src for src in client.sources if src not in synced]


def require_known_ids(store: Any, client: ClientConfig) -> None:
    """Refuse to publish a portal none of whose configured client ids exist in the store.

    Such a portal would be published empty ("No projects to show yet") and look fine. When
    only some ids match, the portal is published: `bridge check` reports the others.
    """
    if not client.sources:
        raise ConfigError(f"client {client.key!r} names no source client ids; add sources = {{ … }} "
                          "(`bridge discover --toml` prints ready blocks)")
    t = Client.__table__  # type: ignore[attr-defined]
    cond = sa.or_(*[sa.and_(t.c.source == src, t.c.source_id.in_([str(i) for i in ids]))
                    for src, ids in client.sources.items() if ids])
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(sa.func.count()).select_from(t).where(cond, t.c.is_deleted.is_(False))).scalar_one()
    if found:
        return
    wanted = "; ".join(f"{src}: {', '.join(map(str, ids))}" for src, ids in client.sources.items())
    never = never_synced(store, client)
    if never:
        raise ConfigError(f"client {client.key!r}: no clients from {', '.join(never)} in the store yet; "
                          "run `bridge sync` first")
    raise ConfigError(f"client {client.key!r}: none of its client ids ({wanted}) matches a client the "
                      "providers sent, so its portal would be empty; `bridge discover` lists the real ids")


# --- output ---------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "ß": "ss", "đ": "d", "ł": "l", "Ł": "L", "œ": "oe"})


def slug(name: str) -> str:
    """A config key from a client name: 'Café Øresund ApS' -> 'cafe-oresund-aps'."""
    import unicodedata

    name = name.translate(_LETTERS)
    ascii_name = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    out = "".join(ch.lower() if ch.isascii() and ch.isalnum() else "-" for ch in ascii_name)
    return "-".join(p for p in out.split("-") if p)[:40] or "client"


def toml_blocks(found: Iterable[FoundClient]) -> str:
    """Ready `[[clients]]` blocks, one per client name: the same name in two sources is one portal.

    Inactive clients are written commented out; the (no client) bucket is skipped.
    """
    by_name: dict[str, list[FoundClient]] = {}
    for c in found:
        if c.id:
            by_name.setdefault(c.name.strip().casefold(), []).append(c)
    lines: list[str] = ["", "# ---- clients from `bridge discover --toml`: check names, add contacts ----", ""]
    used: set[str] = set()
    for group in by_name.values():
        first = group[0]
        key = slug(first.name)
        n = 2
        while key in used:
            key, n = f"{slug(first.name)}-{n}", n + 1
        used.add(key)
        sources: dict[str, list[str]] = {}
        for c in group:
            sources.setdefault(c.source, []).append(c.id)
        projects = sum(len(c.projects) for c in group)
        active = any(c.active for c in group)
        block = [
            f"# {first.name}: {projects} project(s) in {', '.join(sorted(sources))}",
            "[[clients]]",
            f"key = {_quote(key)}",
            f"name = {_quote(first.name)}",
            "sources = { " + ", ".join(f"{src} = [{', '.join(_quote(i) for i in ids)}]"
                                       for src, ids in sorted(sources.items())) + " }",
            "contacts = []  # addresses `bridge invite` may send the link to",
        ]
        if not active:
            block = [block[0] + " (inactive at the provider; uncomment to publish anyway)"] + ["# " + b for b in block[1:]]
        lines.extend(block + [""])
    return "\n".join(lines)


def text_lines(found: Iterable[FoundClient]) -> list[str]:
    out = []
    for c in found:
        state = "" if c.active else " (inactive)"
        head = f"{c.source} client {c.id}: {c.name}{state}" if c.id else f"{c.source}: projects without a client"
        out.append(head + (f" [{c.currency}]" if c.currency else ""))
        for p in c.projects:
            out.append(f"    project {p.id}: {p.name} - budget {p.budget}{'' if p.active else ' (inactive)'}")
        if not c.projects:
            out.append("    no projects")
    return out


def as_json(found: Iterable[FoundClient]) -> list[Mapping[str, Any]]:
    return [c.as_dict() for c in found]
