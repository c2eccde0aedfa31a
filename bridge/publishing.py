"""Publishing, client by client: token, view, render, leak guard, publish, link, audit.

The renderer and the target are passed in (bridge/ never imports publishers/): `bridge/cli/`
wires `publishers.render.render_portal` and `publishers.publisher_for(config.publish)`.
One client's failure is recorded and reported; the others are still published.

Tokens. Each client's objects live under a random token (`secrets.token_urlsafe(24)`,
192 bits), stored in `PortalLink` and never derived from the client's name. Rotating it
(`revoke`) moves the portal and deletes every object under the old token, which kills
every link ever issued for it.

Link windows. A signed link is valid from `signed_at` for the client's `link_expiry`. The
page's own export links are signed at render time for the same window. A publish reuses
the current window while more than `publish.refresh_before` of it remains (capped at half
the expiry), so unchanged data renders a byte-identical page and uploads nothing; once
the window is nearly over - or on `refresh=True` (`bridge links --refresh`) - a new window
starts and the page is rendered again so that its export links never die before the page
link. Exports themselves are not re-uploaded then: only index.html and the manifest change.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import sqlalchemy as sa
from sqlmodel import select

from bridge import leakguard, views
from bridge.audit import record as record_event
from bridge.audit import token_fingerprint
from bridge.config import ClientConfig, Config, parse_duration
from bridge.errors import BridgeError, ConfigError, PublishError, StoreError
from bridge.models import AuditEvent, PortalLink, utcnow
from bridge.publisher import LinkFn, PublishResult, RenderedFile
from bridge.redaction import ReviewLog
from bridge.review import save_review
from bridge.store import Store
from bridge.views import PortalView

log = logging.getLogger(__name__)

RenderFn = Callable[[PortalView, LinkFn, str], Sequence[RenderedFile]]  # publishers.render.render_portal
ViewFn = Callable[[ClientConfig, ReviewLog], PortalView]  # the redacted view; fills the review log
GuardFn = Callable[[ClientConfig, PortalView, Sequence[RenderedFile]], None]  # raises LeakError
ProtectFn = Callable[[ClientConfig, Sequence[RenderedFile]], Sequence[RenderedFile]]


class Target(Protocol):
    """What publishing needs from a target beyond the Publisher port (see publishers/)."""

    signs_links: bool

    def link(self, token: str, path: str) -> str: ...
    def publish(self, token: str, files: Sequence[RenderedFile]) -> PublishResult: ...
    def remove(self, token: str) -> int: ...
    def portal_url(self, token: str) -> str: ...
    def check(self) -> None: ...
    def bind(self, *, signed_at: dt.datetime, expires_in: int, allow_ips: Sequence[str] = ()) -> "Target": ...


@dataclass(frozen=True)
class ClientOutcome:
    """How one client's publish went. `url` is a bearer link: show it, don't log it."""

    client_key: str
    ok: bool
    url: str | None = None
    expires_at: dt.datetime | None = None
    uploaded: int = 0
    deleted: int = 0
    unchanged: int = 0
    link_issued: bool = False
    error: str | None = None
    redacted: int = 0  # descriptions published with parts removed
    withheld: int = 0  # descriptions replaced by "details withheld"
    skipped: bool = False  # nothing it is made from changed since the last publish


@dataclass
class PublishReport:
    outcomes: list[ClientOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[ClientOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class LinkInfo:
    client_key: str
    url: str | None
    expires_at: dt.datetime | None
    published_at: dt.datetime | None
    expires_in_seconds: int | None  # None: never expires (local target) or never published


@dataclass(frozen=True)
class RevokeResult:
    client_key: str
    url: str
    expires_at: dt.datetime | None
    removed: int  # objects deleted under the old token
    old_link_status: int | None  # HTTP status of the old link after removal (None: none existed)


# --- tokens and link rows ----------------------------------------------------------------


def new_token() -> str:
    """192 random bits, URL-safe: never derived from anything a guesser knows."""
    return secrets.token_urlsafe(24)


# What new_token() makes: anything else in the store was altered, and must never become
# a path or an object key (a "../" would reach outside the client's folder).
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}")


def valid_token(token: str | None) -> bool:
    return bool(token) and TOKEN_SHAPE.fullmatch(token or "") is not None


def get_link(store: Store, client_key: str) -> PortalLink | None:
    with store.session() as s:
        return s.get(PortalLink, client_key)


def ensure_link(store: Store, client_key: str, *, checked: bool = True) -> PortalLink:
    """The client's PortalLink row, created with a fresh token on first use.

    A stored token the bridge cannot have made (edited in the database) is refused with
    advice, unless `checked=False` (revoke, which replaces it).
    """
    with store.session() as s:
        row = s.get(PortalLink, client_key)
        if row is not None:
            if checked and not valid_token(row.token):
                raise StoreError(
                    f"client {client_key!r}: the portal token in the store is not one the bridge made "
                    "(it was altered); nothing was published. Run `bridge revoke "
                    f"{client_key}` to issue a new token and link"
                )
            return row
        s.add(PortalLink(client_key=client_key, token=new_token()))
        try:
            s.commit()
        except sa.exc.IntegrityError:  # another process (the scheduler) created it first
            s.rollback()
    with store.session() as s:
        row = s.get(PortalLink, client_key)
        assert row is not None
        return row


def _save_link(store: Store, row: PortalLink) -> None:
    with store.session() as s:
        s.merge(row)
        s.commit()


def audit(store: Store, client_key: str | None, action: str, *, now: dt.datetime | None = None,
          detail: dict[str, Any] | None = None) -> None:
    """One AuditEvent through bridge.audit.record; tokens appear only as fingerprints."""
    record_event(store, action, client_key=client_key, at=now or utcnow(), detail=detail)


def audit_events(store: Store, client_key: str | None = None) -> list[AuditEvent]:
    with store.session() as s:
        q = select(AuditEvent).order_by(AuditEvent.id)  # type: ignore[arg-type]
        if client_key:
            q = q.where(AuditEvent.client_key == client_key)
        return list(s.exec(q))


# --- link windows ------------------------------------------------------------------------


def expiry_seconds(client: ClientConfig) -> int:
    return int(parse_duration(client.link_expiry).total_seconds())


def window_start(link: PortalLink, expires_in: int, refresh_before: dt.timedelta, now: dt.datetime,
                 force: bool = False) -> dt.datetime:
    """When the links to sign now were (or are) first signed; see the module docstring."""
    now = now.astimezone(dt.timezone.utc).replace(microsecond=0)
    if force or link.expires_at is None or not link.url:
        return now
    margin = min(refresh_before, dt.timedelta(seconds=expires_in / 2))
    start = link.expires_at - dt.timedelta(seconds=expires_in)
    # a changed link_expiry moves the derived start; only a start inside the past window is reused
    if start <= now and link.expires_at - now > margin:
        return start
    return now


# --- one client ------------------------------------------------------------------------


def publish_client(
    store: Store,
    config: Config,
    client: ClientConfig,
    target: Target,
    render: RenderFn,
    *,
    build_view: ViewFn | None = None,
    guard: GuardFn | None = None,
    now: dt.datetime | None = None,
    refresh: bool = False,
    token: str | None = None,
    record: bool = True,
    protect: ProtectFn | None = None,
    only_if_changed: bool = False,
) -> ClientOutcome:
    """Render and publish one client's portal; raises on failure (publish_all isolates it).

    `only_if_changed` (what `bridge run` uses) skips the render and upload when the view,
    the client's settings and the link window are what the last publish was made from.

    `protect(client, files) -> files` runs after the leak guard and before upload (the
    passphrase hook, bridge.passphrase.apply_protection with its `protect` bound).

    `token` publishes under a given token instead of the stored one (used by `revoke`);
    `record=False` leaves PortalLink and the audit log alone (previews, `--out`).
    """
    now = now or utcnow()
    hidden = HiddenValues(store, config)  # computed once, shared by the two passes below
    build_view = build_view or default_view_builder(store, config, now, hidden=hidden)
    guard = guard or default_guard(store, config, now, hidden=hidden)
    link_row = ensure_link(store, client.key, checked=token is None)  # revoke brings its own
    token = token or link_row.token
    expires_in = expiry_seconds(client)
    fresh = token != link_row.token
    refresh_before = parse_duration(config.publish.refresh_before)
    signed_at = window_start(link_row, expires_in, refresh_before, now, force=refresh or fresh)
    bound = target.bind(signed_at=signed_at, expires_in=expires_in, allow_ips=client.allow_ips)

    review = ReviewLog()
    view = build_view(client, review)
    def fingerprint_for(expiring: bool) -> str | None:
        # a link that never expires (a folder target) has no window to change
        window = signed_at if expiring else None
        return publish_fingerprint(config, client, view, token, window, expires_in, link_row, protect is not None)

    before = fingerprint_for(link_row.expires_at is not None or not link_row.url)
    if only_if_changed and record and before is not None and before == link_row.published_fingerprint:
        return ClientOutcome(client_key=client.key, ok=True, url=link_row.url, expires_at=link_row.expires_at, skipped=True)
    files = list(render(view, _scoped_link(bound.link, token), token))
    if not any(f.path == "index.html" for f in files):
        raise PublishError(f"client {client.key!r}: the renderer produced no index.html")
    guard(client, view, files)
    if protect is not None:
        # after the guard saw the plain files: encryption would hide a leak from it
        files = list(protect(client, files))
    restrict = getattr(bound, "restrict", None)
    if client.allow_ips and restrict is not None:
        restrict(client, token)  # before the upload: a new folder is never unrestricted
    result = bound.publish(token, files)

    issued = result.url != link_row.url or fresh
    if record:
        link_row.token = token
        link_row.url = result.url
        link_row.expires_at = result.expires_at
        link_row.published_at = now
        link_row.published_fingerprint = fingerprint_for(result.expires_at is not None)
        link_row.data_as_of = _view_attr(view, "data_as_of") or now
        snap = _view_attr(view, "snapshot")
        if snap is not None:
            # views.Snapshot renders itself as JSON via str(); plain dicts/lists are dumped
            link_row.snapshot = json.dumps(snap, sort_keys=True) if isinstance(snap, (dict, list)) else str(snap)
        _save_link(store, link_row)
        save_review(store, client.key, review.findings, at=now)
        fp = token_fingerprint(token)
        audit(store, client.key, "publish", now=now, detail={
            "token_fp": fp, "uploaded": len(result.uploaded), "deleted": len(result.deleted),
            "unchanged": len(result.unchanged)})
        if issued:
            audit(store, client.key, "link_issued", now=now, detail={"token_fp": fp, "expires_at": result.expires_at})
    return ClientOutcome(
        client_key=client.key, ok=True, url=result.url, expires_at=result.expires_at,
        uploaded=len(result.uploaded), deleted=len(result.deleted), unchanged=len(result.unchanged),
        link_issued=issued, redacted=review.count("redacted"), withheld=review.count("withheld"),
    )


# Parts of a view that change without the client's data changing: when it was built,
# the last sync's time, and the change note (relative to the previous publish itself).
_UNFINGERPRINTED = ("generated_at", "as_of", "change_note")


def publish_fingerprint(
    config: Config, client: ClientConfig, view: Any, token: str, signed_at: dt.datetime | None, expires_in: int,
    link_row: PortalLink, protected: bool,
) -> str | None:
    """SHA-256 of what a portal is made from; None when the view cannot be read as data."""
    import dataclasses
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    if dataclasses.is_dataclass(view) and not isinstance(view, type):
        data: Any = {f.name: getattr(view, f.name) for f in dataclasses.fields(view) if f.name not in _UNFINGERPRINTED}
        data = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v for k, v in data.items()}
    elif isinstance(view, dict):
        data = {k: v for k, v in view.items() if k not in _UNFINGERPRINTED}
    else:
        return None
    try:
        code = version("clearhours")
    except PackageNotFoundError:
        code = "dev"
    parts = {
        "view": data, "token": token, "signed_at": signed_at, "expires_in": expires_in,
        "client": client.model_dump(mode="json"), "agency": config.agency.model_dump(mode="json"),
        "publish": config.publish.model_dump(mode="json"), "protected": protected,
        "passphrase": hashlib.sha256((link_row.passphrase or "").encode()).hexdigest(), "code": code,
    }
    try:
        blob = json.dumps(parts, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(blob.encode()).hexdigest()


def _scoped_link(link: LinkFn, token: str) -> LinkFn:
    """The renderer may pass any token; links always point into this client's own folder."""
    return lambda _token, path: link(token, path)


def _view_attr(view: Any, name: str) -> Any:
    # tests hand in plain dicts as views; a PortalView has both attributes
    return getattr(view, name, None) if not isinstance(view, dict) else view.get(name)


# --- every client ------------------------------------------------------------------------


def select_clients(config: Config, keys: Iterable[str] | None) -> list[ClientConfig]:
    if keys is None:
        return list(config.clients)
    return [config.client(k) for k in keys]


def publish_all(
    store: Store,
    config: Config,
    target: Target,
    render: RenderFn,
    *,
    clients: Iterable[str] | None = None,
    build_view: ViewFn | None = None,
    guard: GuardFn | None = None,
    now: dt.datetime | None = None,
    refresh: bool = False,
    record: bool = True,
    protect: ProtectFn | None = None,
    only_if_changed: bool = False,
) -> PublishReport:
    """Publish the named clients (default: all) in config order; failures don't stop the rest.

    A client none of whose configured ids matches a synced client fails without being
    published, on every path (`publish`, `run`, link refresh): its portal would be empty.
    """
    from bridge.discovery import require_known_ids

    now = now or utcnow()
    chosen = select_clients(config, clients)
    target.check()
    report = PublishReport()
    for client in chosen:
        try:
            if build_view is None:  # the view comes from the store: its ids must be there
                require_known_ids(store, client)
            outcome = publish_client(store, config, client, target, render, build_view=build_view, guard=guard,
                                     now=now, refresh=refresh, record=record, protect=protect,
                                     only_if_changed=only_if_changed)
        except BridgeError as exc:
            outcome = ClientOutcome(client_key=client.key, ok=False, error=str(exc))
        except Exception as exc:  # a renderer bug must not stop the other clients
            log.exception("publish: client %s failed", client.key)
            outcome = ClientOutcome(client_key=client.key, ok=False, error=f"{exc.__class__.__name__}: {exc}")
        if not outcome.ok:
            log.error("publish: client %s failed: %s", client.key, outcome.error)
            if record:
                audit(store, client.key, "publish", now=now, detail={"error": outcome.error})
        elif outcome.withheld:
            # `bridge run` publishes unattended: the log is where the agency hears of it
            log.warning("publish: client %s: %d description(s) withheld; run `bridge review %s`",
                        client.key, outcome.withheld, client.key)
        report.outcomes.append(outcome)
    return report


def links_due(store: Store, config: Config, now: dt.datetime | None = None) -> list[str]:
    """Clients whose link expires within `publish.refresh_before` (or was never issued)."""
    now = now or utcnow()
    margin = parse_duration(config.publish.refresh_before)
    due = []
    for c in config.clients:
        row = get_link(store, c.key)
        if row is None or not row.url:
            due.append(c.key)
        elif row.expires_at is not None:
            m = min(margin, dt.timedelta(seconds=expiry_seconds(c) / 2))
            if row.expires_at - now <= m:
                due.append(c.key)
    return due


def list_links(store: Store, config: Config, *, clients: Iterable[str] | None = None,
               expire_within: dt.timedelta | None = None, now: dt.datetime | None = None) -> list[LinkInfo]:
    """Each client's current link; with `expire_within`, only those expiring that soon."""
    now = now or utcnow()
    out = []
    for c in select_clients(config, clients):
        row = get_link(store, c.key)
        expires_at = row.expires_at if row else None
        left = int((expires_at - now).total_seconds()) if expires_at else None
        # --expire-soon lists links that expire (or have expired) within the window only
        if expire_within is not None and (left is None or left > expire_within.total_seconds()):
            continue
        out.append(LinkInfo(c.key, row.url if row else None, expires_at, row.published_at if row else None, left))
    return out


# --- revocation ----------------------------------------------------------------------------


def probe_url(url: str, timeout: float = 10.0) -> int:
    """HTTP status a reader would get for `url` (file:// URLs: 200 if the file exists, else 404)."""
    if url.startswith("file://"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        return 200 if Path(url2pathname(urlsplit(url).path)).is_file() else 404
    try:
        return httpx.get(url, timeout=timeout, follow_redirects=False).status_code
    except httpx.HTTPError as exc:
        raise PublishError(f"could not check the old link: {exc.__class__.__name__}") from None


def revoke(
    store: Store,
    config: Config,
    client_key: str,
    target: Target,
    render: RenderFn,
    *,
    build_view: ViewFn | None = None,
    guard: GuardFn | None = None,
    now: dt.datetime | None = None,
    probe: Callable[[str], int] = probe_url,
    protect: ProtectFn | None = None,
) -> RevokeResult:
    """Rotate a client's token: publish under a new one, delete the old, prove the old link dead."""
    now = now or utcnow()
    client = config.client(client_key)
    target.check()
    old = ensure_link(store, client.key, checked=False)
    old_token, old_url = old.token, old.url
    token = new_token()
    outcome = publish_client(store, config, client, target, render, build_view=build_view, guard=guard,
                             now=now, token=token, protect=protect)
    # an altered token is never used as a path or key prefix: nothing is deleted under it
    removed = target.remove(old_token) if valid_token(old_token) else 0
    status = probe(old_url) if old_url else None
    audit(store, client.key, "link_revoked", now=now, detail={
        "old_token_fp": token_fingerprint(old_token), "token_fp": token_fingerprint(token),
        "removed": removed, "old_link_status": status})
    if status is not None and status < 400:
        raise PublishError(
            f"client {client.key!r}: the old link still answers {status} after its objects were deleted "
            "(a CDN cache?); the new link is issued, check the old one again"
        )
    assert outcome.url is not None
    return RevokeResult(client.key, outcome.url, outcome.expires_at, removed, status)


# --- invitations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    client_key: str
    to: str
    url: str
    expires_at: dt.datetime | None
    sent: bool


def invite(
    store: Store,
    config: Config,
    client_key: str,
    to: str,
    *,
    compose: Callable[[Config, ClientConfig, str, dt.datetime | None, str], Any],
    send: Callable[[Any], None],
    dry_run: bool = False,
    now: dt.datetime | None = None,
    allow_local: bool = False,
) -> tuple[Invitation, Any]:
    """Send a client contact their portal link. Only addresses in that client's `contacts`.

    `compose(config, client, url, expires_at, to)` builds the message (publishers.mail);
    `send(message)` delivers it. With `dry_run` the message is built and returned, not sent.
    """
    now = now or utcnow()
    client = config.client(client_key)
    addr = email.utils.parseaddr(to)[1].lower()
    allowed = {email.utils.parseaddr(c)[1].lower() for c in client.contacts}
    if not addr or addr not in allowed:
        raise ConfigError(
            f"client {client.key!r}: {to!r} is not one of its contacts; add it to clients.contacts first"
        )
    row = get_link(store, client.key)
    if row is None or not row.url:
        raise PublishError(f"client {client.key!r} has no link yet; run `bridge publish --client {client.key}` first")
    if row.expires_at is not None and row.expires_at <= now:
        raise PublishError(
            f"client {client.key!r}: its link expired at {row.expires_at:%Y-%m-%d %H:%M} UTC; "
            f"run `bridge links --refresh --client {client.key}` first"
        )
    if row.url.startswith("file://") and not allow_local and not dry_run:
        raise ConfigError(
            f"client {client.key!r}: its link is a file on this machine ({row.url.split('/')[0]}//…), which the "
            "client cannot open; publish to S3 first, or pass --allow-local if they share this machine"
        )
    message = compose(config, client, row.url, row.expires_at, addr)
    if not dry_run:
        send(message)
        audit(store, client.key, "invitation_sent", now=now, detail={"to": addr, "expires_at": row.expires_at})
    return Invitation(client.key, addr, row.url, row.expires_at, sent=not dry_run), message


def invited(store: Store, client: ClientConfig) -> list[str]:
    """Addresses this client's link was sent to before (the audit trail), still in its contacts."""
    allowed = {email.utils.parseaddr(c)[1].lower() for c in client.contacts}
    seen: list[str] = []
    for event in audit_events(store, client.key):
        if event.action != "invitation_sent" or not event.detail:
            continue
        try:
            addr = str(json.loads(event.detail).get("to", "")).lower()
        except (ValueError, AttributeError):
            continue
        if addr in allowed and addr not in seen:
            seen.append(addr)
    return seen


def reinvite(
    store: Store,
    config: Config,
    client_keys: Iterable[str],
    *,
    compose: Callable[[Config, ClientConfig, str, dt.datetime | None, str], Any],
    send: Callable[[Any], None],
    now: dt.datetime | None = None,
) -> list[Invitation]:
    """After links were refreshed: send the fresh link to everyone invited before.

    A contact who had a working link keeps one without asking; `reinvite = false` on a
    client turns this off. One failed delivery is logged and does not stop the others.
    """
    sent: list[Invitation] = []
    for key in client_keys:
        client = config.client(key)
        if not client.reinvite:
            continue
        for addr in invited(store, client):
            try:
                inv, _ = invite(store, config, key, addr, compose=compose, send=send, now=now)
                sent.append(inv)
            except (BridgeError, OSError) as exc:
                log.error("reinvite: %s to %s: %s", key, addr, exc)
    return sent


# --- the default view builder and leak guard --------------------------------------------


class HiddenValues:
    """leakguard.hidden_values for one publish, computed once per client: the view
    builder's withholding pass and the file guard read the same list (it takes seconds
    for a client with tens of thousands of entries). Computed against the view before
    any description is withheld; withholding only removes text, so the list still holds."""

    def __init__(self, store: Store, config: Config) -> None:
        self.store, self.config = store, config
        self._by_client: dict[str, list[leakguard.HiddenValue]] = {}

    def __call__(self, client: ClientConfig, view: PortalView) -> list[leakguard.HiddenValue]:
        if client.key not in self._by_client:
            self._by_client[client.key] = leakguard.hidden_values(self.store, self.config, client, view=view)
        return self._by_client[client.key]


def default_view_builder(store: Store, config: Config, now: dt.datetime, *, hidden: HiddenValues | None = None) -> ViewFn:
    """views.build_portal_view, then the guard's first pass over its descriptions: one that
    still holds a hidden value after redaction is withheld, not the whole portal."""
    hidden = hidden or HiddenValues(store, config)

    def build(client: ClientConfig, review: ReviewLog) -> PortalView:
        view = views.build_portal_view(store, config, client, now=now, review=review)
        if not view.timesheet or client.visibility.descriptions != "detailed":
            return view
        return leakguard.withhold_descriptions(view, hidden(client, view), review)

    return build


def default_guard(store: Store, config: Config, now: dt.datetime, *, hidden: HiddenValues | None = None) -> GuardFn:
    """The publish-time leak guard over every rendered file: any hit stops this client."""
    hidden = hidden or HiddenValues(store, config)

    def guard(client: ClientConfig, view: PortalView, files: Sequence[RenderedFile]) -> None:
        leakguard.scan(files, hidden(client, view))

    return guard
