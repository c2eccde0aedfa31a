"""Relative paths in a config file mean "next to that file", never "wherever the shell is".

cron and systemd start `bridge -c /etc/clearhours/bridge.toml …` from another directory;
if `sqlite:///clearhours.db` followed the working directory, such a run would silently
create a new, empty store and report every source as never synced. So after a config file
is loaded, every path in it is made absolute against the file's folder:

- `store.url` for SQLite (`sqlite:///clearhours.db`; `sqlite:////abs.db` and in-memory stay),
- `publish.target` for `file://` (`file://./site`, `file://site`; `file:///srv/p` stays),
- `publish.cloudfront_private_key_file`.

A config built in memory (`parse_config`, no file) keeps its paths as given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.request import pathname2url, url2pathname

import sqlalchemy as sa

if TYPE_CHECKING:
    from bridge.config import Config


def _absolute(raw: str, base: Path) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def sqlite_url(url: str, base: Path) -> str:
    """sqlite:///rel.db -> sqlite:////BASE/rel.db; other URLs are returned unchanged."""
    if not url.startswith("sqlite"):
        return url
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return url  # the store reports a malformed URL itself, with advice
    db = parsed.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return url
    return parsed.set(database=str(_absolute(db, base))).render_as_string(hide_password=False)


def file_target(target: str, base: Path) -> str:
    """file://./site -> file:///BASE/site; s3:// and absolute file:/// targets unchanged."""
    if not target.startswith("file://"):
        return target
    raw = target[len("file://"):]
    if not raw:
        return target  # the publisher explains what a file:// target needs
    return "file://" + pathname2url(str(_absolute(url2pathname(raw), base)))


def resolve_paths(config: "Config", base: Path) -> None:
    """Make every path in `config` absolute against `base` (the config file's folder), in place."""
    base = base.resolve()
    config.store.url = sqlite_url(config.store.url, base)
    config.publish.target = file_target(config.publish.target, base)
    if config.publish.cloudfront_private_key_file:
        config.publish.cloudfront_private_key_file = str(_absolute(config.publish.cloudfront_private_key_file, base))
