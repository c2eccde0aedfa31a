"""Fixtures for the sandbox tests: a small seeded agency with a controllable clock, and a server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from connectors.sandbox import HARVEST_ACCOUNT_ID, HARVEST_TOKEN, Sandbox, generate_agency
from connectors.sandbox.agency import Agency

TODAY = dt.date(2025, 3, 20)
HARVEST_HEADERS = {
    "Authorization": f"Bearer {HARVEST_TOKEN}",
    "Harvest-Account-Id": HARVEST_ACCOUNT_ID,
    "User-Agent": "clearhours-tests (tests@example.com)",
}


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: dt.datetime) -> None:
        self.value = start

    def __call__(self) -> dt.datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += dt.timedelta(seconds=seconds)


@pytest.fixture
def harvest_headers() -> dict[str, str]:
    return dict(HARVEST_HEADERS)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc))


@pytest.fixture
def agency(clock: FakeClock) -> Agency:
    return generate_agency(seed=7, today=TODAY, entries=400, clock=clock)


@pytest.fixture
def sandbox(agency: Agency) -> Iterator[Sandbox]:
    with Sandbox(agency, rate_limits=False) as server:
        yield server


@pytest.fixture
def harvest(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client on the Harvest API with the demo credentials."""
    with httpx.Client(base_url=sandbox.url("harvest"), headers=HARVEST_HEADERS, timeout=10) as client:
        yield client


@pytest.fixture
def admin(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url + "/_sandbox", timeout=10) as client:
        yield client
