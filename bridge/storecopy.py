"""`bridge store copy SRC DST`: move an installation to another store, credentials included.

Moving from SQLite to PostgreSQL (or to another file) by syncing again from scratch would
spend FreshBooks' single-use refresh token in the new store while the old one still holds
its spent copy, and the first refresh of whichever store is older ends in invalid_grant.
Copying every table instead carries the *current* refresh token (and the access token, the
portal tokens, passphrases, cursors and the audit trail) across; afterwards the rotating
FreshBooks credentials are removed from the source store, so a forgotten service still
pointed at it cannot spend the token the new store depends on. Stop `bridge run` before
copying: rows written during the copy would be missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import SQLModel

from bridge.errors import StoreError
from bridge.models import SchemaVersion, SourceSecret
from bridge.store import Store

CHUNK = 1000
# Rotating credentials a provider may invalidate: only one store may hold them at a time.
ROTATING = ("refresh_token", "access_token", "access_token_expires_at")


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    moved_credentials: list[str] = field(default_factory=list)  # "source/name"

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _tables() -> Iterable[sa.Table]:
    skip = {SchemaVersion.__table__.name}  # type: ignore[attr-defined]
    return [t for t in SQLModel.metadata.sorted_tables if t.name not in skip]


def _empty(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [t.name for t in _tables() if conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()]


def copy_store(src_url: str, dst_url: str, *, move_credentials: bool = True) -> CopyReport:
    """Copy every row of SRC into an empty DST (created and migrated as needed)."""
    src, dst = Store(src_url), Store(dst_url)
    try:
        if src.engine.url == dst.engine.url:
            raise StoreError("the source and destination stores are the same")
        src.migrate()  # both on this bridge's schema version before rows move
        dst.migrate()
        busy = _empty(dst)
        if busy:
            raise StoreError(f"the destination store is not empty ({', '.join(busy[:4])}…); copy into a new, "
                             "empty database or file")
        report = CopyReport()
        with src.engine.connect() as read, dst.engine.begin() as write:
            for table in _tables():
                n = 0
                result = read.execution_options(stream_results=True).execute(sa.select(table))
                while rows := result.fetchmany(CHUNK):
                    write.execute(sa.insert(table), [dict(r._mapping) for r in rows])
                    n += len(rows)
                report.rows[table.name] = n
            if dst.dialect == "postgresql":
                _reset_sequences(write)
        if move_credentials:
            report.moved_credentials = _remove_rotating(src)
        return report
    finally:
        src.close()
        dst.close()


def _reset_sequences(conn: sa.Connection) -> None:
    """Rows kept their ids; PostgreSQL's id sequences must continue after them."""
    for table in _tables():
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and pk[0].autoincrement is not False and isinstance(pk[0].type, sa.Integer):
            col = pk[0].name
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{col}'), "
                f"COALESCE((SELECT MAX({col}) FROM {table.name}), 0) + 1, false)"
            ))


def _remove_rotating(store: Store) -> list[str]:
    t = SourceSecret.__table__  # type: ignore[attr-defined]
    with store.engine.begin() as conn:
        rows = conn.execute(sa.select(t.c.source, t.c.name).where(t.c.name.in_(ROTATING))).all()
        conn.execute(sa.delete(t).where(t.c.name.in_(ROTATING)))
    return [f"{source}/{name}" for source, name in rows]
