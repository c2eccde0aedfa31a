"""A fingerprint of the effective configuration, so processes sharing a store can tell
whether they agree, and say exactly where they do not.

Each setting becomes one `key -> hash` pair: `sources[harvest].every`,
`clients[acme].visibility.rates`, `publish.target`. Sources and clients are named by
their name and key, not their position, so reordering the file changes nothing. Only
hashes are recorded (in the store, for the other processes): a differing key can be
named without its value ever being written anywhere.

Left out, because they may differ between processes that do the same work:
- the config file's own path (each host keeps it where it likes);
- the store URL (the processes found each other through it, by whatever host name,
  and it may carry a password).
Secrets are never part of the configuration (the file names environment variables),
so none can enter the fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bridge.config import Config

_LEFT_OUT = {"store.url"}


def config_keys(config: Config) -> dict[str, str]:
    """`key -> short hash of its value` for every setting of `config`."""
    data = config.model_dump(mode="json", exclude={"path"})
    flat: dict[str, Any] = {}
    _flatten(data, "", flat)
    return {k: _hash(k, v) for k, v in sorted(flat.items()) if k not in _LEFT_OUT}


def fingerprint(keys: dict[str, str]) -> str:
    """One hash for the whole configuration (64 hex characters)."""
    text = "\n".join(f"{k}={v}" for k, v in sorted(keys.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def differing_keys(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """The settings that differ, including those only one side has, sorted."""
    return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))


def describe_difference(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = value
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
        return
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        for i, item in enumerate(value):
            label = item.get("name") if prefix == "sources" else item.get("key") if prefix == "clients" else None
            _flatten(item, f"{prefix}[{label if label is not None else i}]", out)
        return
    out[prefix] = value


def _hash(key: str, value: Any) -> str:
    # The key salts the hash, so equal values under different keys do not look alike.
    text = key + "\0" + json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["config_keys", "fingerprint", "differing_keys", "describe_difference"]
