"""The audit trail: the bridge's own actions, and portal requests read from S3/CloudFront logs.

Every event is an `AuditEvent` row. The bridge records its own actions with `record()`
(publish, link_issued, link_revoked, passphrase_rotated, passphrase_shown, alert_sent, …).
Portal requests come from S3 server access logs or CloudFront standard logs, which AWS
delivers to a log bucket minutes to hours after the fact: `ingest()` reads the log objects
it has not read before, attributes each request to a client by the token in the object key
(current and revoked tokens alike), and stores one `access` event per request together with
a `log_ingested` marker for the log object, in one transaction, so re-reading a log object
adds nothing. A malformed line is counted and skipped, never fatal.

Tokens never enter the trail: an event names the client, the path inside its folder and a
short fingerprint of the token (`token_fingerprint`), which is enough to tell an old link
from the current one. Query strings (which carry signatures) are never stored.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from sqlmodel import select

from bridge.models import AuditEvent, PortalLink, utcnow
from bridge.store import Store

log = logging.getLogger(__name__)

ACCESS, INGESTED = "access", "log_ingested"
# actions whose detail names a token fingerprint the client once had (see token_index)
_TOKEN_KEYS = ("token_fp", "old_token_fp")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}


# --- recording ------------------------------------------------------------------------------


def record(store: Store, action: str, *, client_key: str | None = None, at: dt.datetime | None = None,
           object_key: str | None = None, remote_ip: str | None = None, user_agent: str | None = None,
           status: int | None = None, link_valid: bool | None = None,
           detail: Mapping[str, Any] | None = None) -> None:
    """Append one event. `detail` is stored as JSON; never put a secret or a token in it."""
    with store.session() as s:
        s.add(AuditEvent(at=at or utcnow(), client_key=client_key, action=action, object_key=object_key,
                         remote_ip=remote_ip, user_agent=user_agent, status=status, link_valid=link_valid,
                         detail=_json(detail)))
        s.commit()


def token_fingerprint(token: str) -> str:
    """A short, one-way name for a token: audit rows can tell tokens apart without holding one."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def _json(detail: Mapping[str, Any] | None) -> str | None:
    return json.dumps(dict(detail), default=str, sort_keys=True) if detail else None


# --- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRecord:
    """One request from an access log, in the fields the audit keeps."""

    at: dt.datetime
    remote_ip: str
    method: str  # GET, HEAD, PUT, … (from the S3 operation or the CloudFront method)
    key: str  # object key or URI path, percent-decoded, without a query string
    status: int
    user_agent: str | None
    request_id: str | None
    error_code: str | None = None
    internal: bool = False  # made with header credentials: the bridge, an admin, or CloudFront's origin fetch


@dataclass
class ParseResult:
    records: list[AccessRecord] = field(default_factory=list)
    malformed: int = 0


# S3 server access log fields are space-separated; time is [bracketed], request-uri,
# referer and user agent are "quoted" (with \" escapes inside).
_S3_TOKEN = re.compile(r'\[[^\]]*\]|"(?:[^"\\]|\\.)*"|\S+')
_S3_TIME = re.compile(r"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\]")
_S3_OPERATION = re.compile(r"(?:REST|WEBSITE|BATCH)\.([A-Z]+)\.([A-Z_]+)")


def _dash(value: str) -> str | None:
    return None if value in ("-", "") else value


def _unquote_field(value: str) -> str | None:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    return _dash(value)


def _s3_time(value: str) -> dt.datetime:
    m = _S3_TIME.fullmatch(value)
    if not m or m.group(2) not in _MONTHS:
        raise ValueError(f"bad time {value!r}")
    d, mon, y, hh, mm, ss, sign, oh, om = m.groups()
    offset = dt.timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
    local = dt.datetime(int(y), _MONTHS[mon], int(d), int(hh), int(mm), int(ss), tzinfo=dt.timezone(offset))
    return local.astimezone(dt.timezone.utc)


def parse_s3_line(line: str) -> AccessRecord | None:
    """One S3 server access log line; None for requests that are not about an object.

    Raises:
        ValueError: the line is not in the S3 server access log format.
    """
    f = _S3_TOKEN.findall(line)
    if len(f) < 18:
        raise ValueError(f"{len(f)} fields, expected at least 18")
    at = _s3_time(f[2])
    op = _S3_OPERATION.fullmatch(f[6])
    if not op:
        raise ValueError(f"bad operation {f[6]!r}")
    if not f[9].isdigit():
        raise ValueError(f"bad status {f[9]!r}")
    key = _dash(f[7])
    if key is None or op.group(2) != "OBJECT":
        return None
    auth_type = f[21] if len(f) > 21 else "-"
    return AccessRecord(
        at=at, remote_ip=f[3], method=op.group(1), key=unquote(key), status=int(f[9]),
        user_agent=_unquote_field(f[16]), request_id=_dash(f[5]), error_code=_dash(f[10]),
        internal=auth_type == "AuthHeader",
    )


# CloudFront standard (legacy) log fields, used when a file has no #Fields line.
CLOUDFRONT_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol "
    "cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type "
    "cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte "
    "x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end"
).split()
_CF_NEEDED = ("date", "time", "c-ip", "cs-method", "cs-uri-stem", "sc-status")


def parse_cloudfront(lines: Iterable[str]) -> ParseResult:
    """A CloudFront standard log file (W3C, tab-separated, #Version/#Fields headers)."""
    out = ParseResult()
    names = list(CLOUDFRONT_FIELDS)
    for line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        if line.startswith("#"):
            if line.startswith("#Fields:"):
                names = line.removeprefix("#Fields:").split()
            continue
        values = line.split("\t")
        row = dict(zip(names, values))
        try:
            if len(values) < len(names) or any(k not in row for k in _CF_NEEDED):
                raise ValueError("missing fields")
            at = dt.datetime.strptime(f"{row['date']} {row['time']}", "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=dt.timezone.utc)
            if not row["sc-status"].isdigit():
                raise ValueError("bad status")
            ua = row.get("cs(User-Agent)")
            out.records.append(AccessRecord(
                at=at, remote_ip=row["c-ip"], method=row["cs-method"], key=unquote(row["cs-uri-stem"]).lstrip("/"),
                status=int(row["sc-status"]), user_agent=_dash(unquote(ua)) if ua else None,
                request_id=_dash(row.get("x-edge-request-id", "-")),
            ))
        except ValueError:
            out.malformed += 1
    return out


def parse_s3(lines: Iterable[str]) -> ParseResult:
    out = ParseResult()
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = parse_s3_line(line.rstrip("\r\n"))
        except ValueError:
            out.malformed += 1
            continue
        if rec is not None:
            out.records.append(rec)
    return out


def parse_log(data: bytes, fmt: str) -> ParseResult:
    """A whole log object (gzip or plain text) in format 's3' or 'cloudfront'."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    lines = data.decode("utf-8", errors="replace").splitlines()
    return parse_cloudfront(lines) if fmt == "cloudfront" else parse_s3(lines)


# --- attribution ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenOwner:
    client_key: str
    current: bool


def token_index(store: Store) -> dict[str, TokenOwner]:
    """Token fingerprint -> client, for current tokens and every token recorded as revoked."""
    out: dict[str, TokenOwner] = {}
    with store.session() as s:
        for ev in s.exec(select(AuditEvent).where(AuditEvent.detail.is_not(None))):  # type: ignore[union-attr]
            if ev.client_key is None or ev.action in (ACCESS, INGESTED):
                continue
            try:
                detail = json.loads(ev.detail or "")
            except ValueError:
                continue
            for k in _TOKEN_KEYS:
                fp = detail.get(k) if isinstance(detail, dict) else None
                if isinstance(fp, str):
                    out[fp] = TokenOwner(ev.client_key, False)
        for link in s.exec(select(PortalLink)):
            out[token_fingerprint(link.token)] = TokenOwner(link.client_key, True)
    return out


def attribute(key: str, tokens: Mapping[str, TokenOwner]) -> tuple[TokenOwner, str, str] | None:
    """(owner, token fingerprint, path inside the client's folder) for a portal object key."""
    parts = key.split("/")
    for i, part in enumerate(parts[:-1]):
        fp = token_fingerprint(part)
        if fp in tokens:
            return tokens[fp], fp, "/".join(parts[i + 1:])
    return None


# --- ingestion -----------------------------------------------------------------------------


@dataclass
class IngestStats:
    log_objects: int = 0
    skipped_objects: int = 0  # already ingested
    events: int = 0
    malformed: int = 0
    unattributed: int = 0  # requests for keys under no known token
    internal: int = 0  # the bridge's own reads and writes

    def add(self, other: "IngestStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def already_ingested(store: Store, log_key: str) -> bool:
    with store.session() as s:
        q = select(AuditEvent.id).where(AuditEvent.action == INGESTED, AuditEvent.object_key == log_key)
        return s.exec(q).first() is not None


def ingest_object(store: Store, log_key: str, data: bytes, fmt: str, *, now: dt.datetime | None = None,
                  tokens: Mapping[str, TokenOwner] | None = None) -> IngestStats:
    """Store the access events of one log object, once: a second call with the same key adds nothing."""
    if already_ingested(store, log_key):
        return IngestStats(skipped_objects=1)
    tokens = token_index(store) if tokens is None else tokens
    parsed = parse_log(data, fmt)
    stats = IngestStats(log_objects=1, malformed=parsed.malformed)
    rows = []
    for rec in parsed.records:
        if rec.internal or rec.method not in ("GET", "HEAD"):
            stats.internal += 1
            continue
        found = attribute(rec.key, tokens)
        if found is None:
            stats.unattributed += 1
            continue
        owner, fp, path = found
        rows.append(AuditEvent(
            at=rec.at, client_key=owner.client_key, action=ACCESS, object_key=path, remote_ip=rec.remote_ip,
            user_agent=rec.user_agent, status=rec.status, link_valid=200 <= rec.status < 300 or rec.status == 304,
            detail=_json({"token_fp": fp, "revoked_token": not owner.current, "request_id": rec.request_id,
                          "error_code": rec.error_code, "method": rec.method, "log": log_key}),
        ))
    stats.events = len(rows)
    with store.session() as s:
        s.add_all(rows)
        s.add(AuditEvent(at=now or utcnow(), action=INGESTED, object_key=log_key, detail=_json({
            "format": fmt, "events": stats.events, "malformed": stats.malformed,
            "unattributed": stats.unattributed, "internal": stats.internal})))
        s.commit()
    if parsed.malformed:
        log.warning("audit: %s: %d malformed line(s) skipped", log_key, parsed.malformed)
    return stats


class LogBucket(Protocol):
    """The slice of a boto3 S3 client that ingestion uses."""

    def get_paginator(self, operation_name: str) -> Any: ...
    def get_object(self, **kwargs: Any) -> Any: ...


def list_log_keys(client: LogBucket, bucket: str, prefix: str) -> Iterator[str]:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield obj["Key"]


def ingest(store: Store, client: LogBucket, bucket: str, prefix: str, fmt: str, *,
           now: dt.datetime | None = None) -> IngestStats:
    """Read every log object under bucket/prefix not read before; see the module docstring."""
    total = IngestStats()
    tokens = token_index(store)
    with store.session() as s:
        done = set(s.exec(select(AuditEvent.object_key).where(
            AuditEvent.action == INGESTED, AuditEvent.object_key.startswith(prefix))))  # type: ignore[union-attr]
    for key in list_log_keys(client, bucket, prefix):
        if key in done:
            total.skipped_objects += 1
            continue
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        total.add(ingest_object(store, key, data, fmt, now=now, tokens=tokens))
    return total


# --- queries -------------------------------------------------------------------------------


def events(store: Store, *, client_key: str | None = None, since: dt.datetime | None = None,
           include_markers: bool = False) -> list[AuditEvent]:
    """Events oldest first; `log_ingested` bookkeeping rows only when asked for."""
    with store.session() as s:
        q = select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)  # type: ignore[arg-type]
        if client_key:
            q = q.where(AuditEvent.client_key == client_key)
        if since is not None:
            q = q.where(AuditEvent.at >= since)
        if not include_markers:
            q = q.where(AuditEvent.action != INGESTED)
        return list(s.exec(q))


def event_dict(ev: AuditEvent) -> dict[str, Any]:
    detail = None
    if ev.detail:
        try:
            detail = json.loads(ev.detail)
        except ValueError:
            detail = ev.detail
    return {"at": ev.at.isoformat() if ev.at else None, "client": ev.client_key, "action": ev.action,
            "object": ev.object_key, "remote_ip": ev.remote_ip, "user_agent": ev.user_agent, "status": ev.status,
            "link_valid": ev.link_valid, "detail": detail}


def event_line(ev: AuditEvent) -> str:
    """One human line per event, for `bridge audit`."""
    at = ev.at.strftime("%Y-%m-%d %H:%M:%S") if ev.at else "?"
    parts = [at, ev.client_key or "-", ev.action]
    if ev.action == ACCESS:
        verdict = "ok" if ev.link_valid else "DENIED"
        parts += [ev.object_key or "-", str(ev.status), verdict, ev.remote_ip or "-", (ev.user_agent or "-")[:60]]
    elif ev.detail:
        parts.append(ev.detail)
    return "  ".join(parts)
