"""A [[sources]] block for a sandbox provider that runs at test speed."""

from __future__ import annotations

from typing import Any

from connectors.sandbox.demo import source_block

# The sandboxes these tests start serve without rate limits, so the client-side limiter
# (FreshBooks: 10 requests a second, about 1 s asleep per 10 pages) would only add wall
# time. The limiter itself is tested in tests/bridge/test_http.py.
UNTHROTTLED = {"requests_per_window": 100_000, "window_seconds": 1.0}


def fast_source_block(provider: str, base_url: str, name: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """`source_block`, without the client-side rate limit."""
    block, env = source_block(provider, base_url, name)
    return {**block, **UNTHROTTLED}, env
