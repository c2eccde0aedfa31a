"""Offboarding: find every portal on the target, orphans included, and retire them.

A client removed from the config, or renamed (a new key publishes under a new token), leaves
its old portal live on the target: its link still works until the objects are gone. The
target, not the config, is the truth about what is published, so `list_portals` starts
from the target's own listing and names each folder by the store's link rows:

- `live`: the token of a client in the config;
- `orphan`: the token of a key the config no longer has (removed or renamed);
- `unknown`: a token no link row names (a revoked token whose deletion failed, a copy of
  the folder, another store's portal).

`retire` deletes a portal's objects, checks that its old link is dead, forgets the link row
(and with it the passphrase) and records `portal_retired` in the audit trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlmodel import select

from bridge.audit import record, token_fingerprint
from bridge.config import Config
from bridge.errors import ConfigError, PublishError
from bridge.models import PortalLink, utcnow
from bridge.store import Store


class ListableTarget(Protocol):
    def portals(self) -> dict[str, int]: ...

    def remove(self, token: str) -> int: ...


@dataclass(frozen=True)
class PortalEntry:
    token: str  # never printed: a file:// or CloudFront link is the token itself
    fingerprint: str
    client_key: str | None
    state: str  # live | orphan | unknown
    objects: int
    published_at: dt.datetime | None
    url: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"client": self.client_key, "state": self.state, "fingerprint": self.fingerprint,
                "objects": self.objects, "published_at": self.published_at.isoformat() if self.published_at else None}

    def line(self) -> str:
        who = self.client_key or "(no client)"
        when = f", published {self.published_at:%Y-%m-%d %H:%M} UTC" if self.published_at else ""
        why = {"live": "", "orphan": " - ORPHAN: not in the config any more",
               "unknown": " - UNKNOWN: no link in this store names it"}[self.state]
        return f"{who} [{self.fingerprint}]: {self.objects} object(s){when}{why}"


def _links(store: Store) -> list[PortalLink]:
    with store.session() as s:
        return list(s.exec(select(PortalLink)))


def list_portals(store: Store, config: Config, target: ListableTarget) -> list[PortalEntry]:
    """Every portal folder on the target, live first, then orphans, then unknown tokens."""
    keys = {c.key for c in config.clients}
    by_token = {row.token: row for row in _links(store)}
    out = []
    for token, count in target.portals().items():
        row = by_token.get(token)
        state = "unknown" if row is None else ("live" if row.client_key in keys else "orphan")
        out.append(PortalEntry(token, token_fingerprint(token), row.client_key if row else None, state, count,
                               row.published_at if row else None, row.url if row else None))
    order = {"live": 0, "orphan": 1, "unknown": 2}
    return sorted(out, key=lambda e: (order[e.state], e.client_key or "", e.fingerprint))


@dataclass(frozen=True)
class Retired:
    client_key: str | None
    fingerprint: str
    removed: int
    old_link_status: int | None


def _find(entries: Sequence[PortalEntry], store: Store, key: str) -> tuple[str, str | None, str | None]:
    """(token, client key, url) for a client key or a fingerprint shown by `bridge portals`."""
    for e in entries:
        if key in (e.client_key, e.fingerprint):
            return e.token, e.client_key, e.url
    for row in _links(store):  # a link row whose objects are gone already: forget the row
        if key in (row.client_key, token_fingerprint(row.token)):
            return row.token, row.client_key, row.url
    raise ConfigError(f"no portal {key!r} on the target or in the store; `bridge portals` lists client keys "
                      "and fingerprints")


def retire(store: Store, config: Config, target: ListableTarget, key: str, *,
           probe: Callable[[str], int] | None = None, now: dt.datetime | None = None) -> Retired:
    """Delete one portal (by client key or fingerprint), prove its link dead, forget it, audit it.

    A client still in the config is refused: the next publish would bring it back.
    """
    token, client_key, url = _find(list_portals(store, config, target), store, key)
    if client_key in {c.key for c in config.clients}:
        raise ConfigError(f"client {client_key!r} is still in the config, so the next publish would bring its "
                          f"portal back; remove its [[clients]] block first (or `bridge revoke {client_key}` "
                          "for a new link)")
    removed = target.remove(token)
    status = None
    if url and probe is not None:
        status = probe(url)
    with store.session() as s:
        for row in s.exec(select(PortalLink).where(PortalLink.token == token)):
            s.delete(row)
        s.commit()
    fp = token_fingerprint(token)
    record(store, "portal_retired", client_key=client_key, at=now or utcnow(),
           detail={"token_fp": fp, "removed": removed, "old_link_status": status})
    if status is not None and status < 400:
        raise PublishError(f"portal {client_key or fp}: the old link still answers {status} after its objects were "
                           "deleted (a CDN cache?); check it again in a few minutes")
    return Retired(client_key, fp, removed, status)


def retire_orphans(store: Store, config: Config, target: ListableTarget, *,
                   probe: Callable[[str], int] | None = None, include_unknown: bool = False) -> list[Retired]:
    """Retire every orphan (and, with include_unknown, every folder no link names)."""
    states = {"orphan", "unknown"} if include_unknown else {"orphan"}
    done = []
    for e in list_portals(store, config, target):
        if e.state in states:
            done.append(retire(store, config, target, e.client_key or e.fingerprint, probe=probe))
    return done
