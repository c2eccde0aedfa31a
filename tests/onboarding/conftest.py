"""A sandbox standing in for three real tracker accounts, and config files pointing at it."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox import Sandbox, generate_accounts
from connectors.sandbox.demo import source_block, to_toml

TODAY = dt.date(2025, 3, 20)


@pytest.fixture
def accounts() -> Iterator[Sandbox]:
    """Each provider serves its own account (the default of `bridge sandbox`)."""
    with Sandbox(generate_accounts(seed=3, today=TODAY, entries=200), rate_limits=False) as box:
        yield box


def write_config(box: Sandbox, folder: Path, *, clients: list[dict[str, Any]] | None = None,
                 providers: tuple[str, ...] = ("harvest", "freshbooks", "productive"),
                 monkeypatch: pytest.MonkeyPatch | None = None, drop: tuple[str, ...] = ()) -> Path:
    """bridge.toml for the sandbox's providers; their secrets go into the environment only."""
    sources = []
    for p in providers:
        block, env = source_block(p, box.url(p))
        for key in drop:
            block.pop(key, None)
        sources.append(block)
        for var, value in env.items():
            if monkeypatch is not None:
                monkeypatch.setenv(var, value)
            else:
                os.environ[var] = value
    data: dict[str, Any] = {"store": {"url": "sqlite:///clearhours.db"},
                            "agency": {"name": "Nordwind", "timezone": "Europe/Berlin"},
                            "sources": sources, "clients": clients or [], "publish": {"target": "file://./site"}}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bridge.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path
