"""Portal passphrases: generate, rotate, read, and the publish-time hook that applies them.

A protected client's passphrase lives in `PortalLink.passphrase` in the store, in clear,
because the bridge must encrypt every re-publish under it (docs/threat-model.md: anyone
who can read the store can read it). It is shown once on rotation, or on an explicit
`bridge passphrase CLIENT --show` (which is audited), and is delivered to the client
separately from the link.
"""

from __future__ import annotations

import datetime as dt
import secrets
import unicodedata
from collections.abc import Callable, Sequence

from bridge.audit import record
from bridge.config import ClientConfig
from bridge.errors import ConfigError
from bridge.models import PortalLink, utcnow
from bridge.publisher import RenderedFile
from bridge.store import Store

# No 0/o, 1/l/i: read aloud or copied by hand without guessing. 31 symbols x 24 = 118 bits.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUPS, GROUP_LEN = 6, 4
MIN_LENGTH = 12

ProtectFn = Callable[..., Sequence[RenderedFile]]  # publishers.protect.protect


def generate_passphrase() -> str:
    """24 random symbols in dash-separated groups of four, e.g. 'k7mq-x9pa-…'."""
    chars = [secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LEN)]
    return "-".join("".join(chars[i:i + GROUP_LEN]) for i in range(0, len(chars), GROUP_LEN))


def normalize_passphrase(value: str) -> str:
    """What is fed to the key derivation; the browser applies the same NFC + trim."""
    return unicodedata.normalize("NFC", value).strip()


def get_passphrase(store: Store, client_key: str) -> str | None:
    with store.session() as s:
        row = s.get(PortalLink, client_key)
        return row.passphrase if row else None


def rotate_passphrase(store: Store, client_key: str, *, now: dt.datetime | None = None,
                      passphrase: str | None = None) -> str:
    """Store a new passphrase for a client (generated unless given) and audit the rotation.

    The portal already published stays encrypted under the old one until the next publish.
    """
    from bridge.publishing import ensure_link  # the token row is publishing's; reuse its creation

    value = normalize_passphrase(passphrase) if passphrase is not None else generate_passphrase()
    if len(value) < MIN_LENGTH:
        raise ConfigError(f"a portal passphrase needs at least {MIN_LENGTH} characters")
    ensure_link(store, client_key)
    with store.session() as s:
        row = s.get(PortalLink, client_key)
        assert row is not None
        had_one = row.passphrase is not None
        row.passphrase = value
        s.add(row)
        s.commit()
    record(store, "passphrase_rotated", client_key=client_key, at=now or utcnow(),
           detail={"replaced": had_one})
    return value


def show_passphrase(store: Store, client_key: str, *, now: dt.datetime | None = None) -> str | None:
    """The stored passphrase; every read through here leaves an audit event."""
    value = get_passphrase(store, client_key)
    if value is not None:
        record(store, "passphrase_shown", client_key=client_key, at=now or utcnow())
    return value


def apply_protection(store: Store, client: ClientConfig, files: Sequence[RenderedFile],
                     protect: ProtectFn) -> list[RenderedFile]:
    """The publish hook: encrypt a protected client's files, or pass others through.

    Call it after the leak guard has checked the plain files and before upload. A client
    with `passphrase = true` and none stored fails closed: nothing unprotected goes out.
    """
    if not client.passphrase:
        return list(files)
    value = get_passphrase(store, client.key)
    if not value:
        raise ConfigError(
            f"client {client.key!r} is set to passphrase = true but has no passphrase yet; run "
            f"`bridge passphrase {client.key} --rotate`, deliver it to the client, then publish"
        )
    return list(protect(files, value, idle_minutes=client.idle_minutes))
