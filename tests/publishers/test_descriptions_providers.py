"""Detailed descriptions on all three trackers: the sandbox agency's notes name other
clients, colleagues (in full, by last name, by e-mail), phone lines and links, and carry
inline internal remarks. Synced over real HTTP from Harvest, FreshBooks and Productive,
every portal publishes, and an independent read of every byte finds none of it."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest

from bridge import publishing
from bridge.config import parse_config
from bridge.connector import Context
from bridge.http import RetryPolicy
from bridge.review import review_items
from bridge.store import Store
from bridge.sync import sync_source
from connectors import build_connector
from connectors.sandbox import Sandbox, generate_agency
from connectors.sandbox.demo import demo_config
from publishers.render import render_portal
from tests.publishers.test_descriptions import Capture, folded, whole_word
from tests.publishers.test_render_leaks import rendered_text

TODAY = dt.date(2025, 3, 20)
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)


class Keep(Capture):
    """Keeps every client's files, not only the last client's."""

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        self.by_token: dict[str, list] = {}

    def publish(self, token, files):  # type: ignore[no-untyped-def]
        self.by_token[token] = list(files)
        return super().publish(token, files)


@pytest.mark.slow
@pytest.mark.parametrize("team", ["anonymous", "first_name"])
def test_every_sandbox_portal_publishes_detailed_descriptions_on_all_three_trackers(tmp_path: Path, team: str) -> None:
    agency = generate_agency(seed=5, today=TODAY, entries=900)
    with Sandbox(agency, rate_limits=False) as box:
        data, env = demo_config(box, store_url=f"sqlite:///{tmp_path / 's.db'}", target=f"file://{tmp_path / 'site'}")
        os.environ.update(env)
        for c in data["clients"]:
            c["visibility"].update(descriptions="detailed", view="realtime", team_names=team, rates="hidden")
        config = parse_config(data)
        store = Store(config.store.url)
        store.migrate()
        for src in config.sources:
            conn = build_connector(src, tz=config.agency.zone, store=store, retry=RetryPolicy(attempts=3, sleep=lambda s: None))
            try:
                report = sync_source(conn, store, src, ctx=Context(source=src.name, tz=config.agency.zone, today=TODAY))
            finally:
                conn.close()
            assert report.status == "ok", report
    assert {s.kind for s in config.sources} == {"harvest", "freshbooks", "productive"}
    assert {next(iter(c.sources)) for c in config.clients} == {"harvest", "freshbooks", "productive"}

    target = Keep(str(tmp_path / "site"))
    result = publishing.publish_all(store, config, target, render_portal, now=NOW)
    assert result.ok, [(o.client_key, o.error) for o in result.failed]

    people = list(agency.people.values())
    names = {c.name for c in agency.clients.values()}
    redacted_somewhere = 0
    for outcome, client in zip(result.outcomes, config.clients):
        token = publishing.get_link(store, client.key).token
        text = rendered_text(target.by_token[token])
        low = folded(text)
        for other in names - {client.name}:
            assert folded(other) not in low, (client.key, other)
        # the agency's own contact (Alice Martin <alice@martin.example>) is on every portal by design
        emails = set(re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)) - {"alice@martin.example"}
        assert not emails, (client.key, emails)
        assert "nordwind.example" not in text and "9018 2044" not in text
        assert "[internal]" not in text.lower() and "broke it" not in text
        for p in people:
            if p.last_name != "Martin":
                assert not whole_word(folded(p.last_name), low), (client.key, p.last_name)
            if team == "anonymous" and p.first_name != "Alice":
                assert not whole_word(folded(p.first_name), low), (client.key, p.first_name)
        items = review_items(store, [client.key])
        assert sum(1 for i in items if i.action == "withheld") == outcome.withheld
        assert sum(1 for i in items if i.action == "redacted") == outcome.redacted
        redacted_somewhere += outcome.redacted
    assert redacted_somewhere > 0  # the corpus did reach the portals and was cleaned there
    store.close()
