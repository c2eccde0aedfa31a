"""`bridge run` publishes only portals whose data, settings or link window changed, also after a restart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bridge import publishing
from bridge.store import Store
from publishers import publisher_for
from tests.publishers.conftest import fake_render, make_config, no_leaks, views

T0 = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)


class ExpiringLinks:
    """A folder target whose links expire like signed S3 links: `expires_at = signed_at + expires_in`."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.expires = inner, None

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)

    def bind(self, *, signed_at: dt.datetime, expires_in: int, allow_ips=()):  # type: ignore[no-untyped-def]
        bound = ExpiringLinks(self.inner)
        bound.expires = signed_at + dt.timedelta(seconds=expires_in)
        return bound

    def publish(self, token, files):  # type: ignore[no-untyped-def]
        import dataclasses

        return dataclasses.replace(self.inner.publish(token, files), expires_at=self.expires)


class CountingRender:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, view, link, token=""):  # type: ignore[no-untyped-def]
        self.calls.append(view["name"])
        return fake_render(view, link, token)


def _run(store: Store, config, render: CountingRender, now: dt.datetime, overrides=None, expiring=False, **kw):  # type: ignore[no-untyped-def]
    target = ExpiringLinks(publisher_for(config.publish)) if expiring else publisher_for(config.publish)
    return publishing.publish_all(store, config, target, render, build_view=views(overrides),
                                  guard=no_leaks, now=now, only_if_changed=True, **kw)


def test_unchanged_portals_are_not_rendered_again_even_after_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    config = make_config(f"file://{tmp_path}/site")
    store = Store(url)
    store.migrate()
    render = CountingRender()
    first = _run(store, config, render, T0)
    assert [o.skipped for o in first.outcomes] == [False, False]
    assert render.calls == ["Acme Ltd", "Globex Ltd"]
    store.close()

    # a restart: a new process, a new Store on the same database
    store = Store(url)
    store.migrate()
    render = CountingRender()
    again = _run(store, config, render, T0 + dt.timedelta(minutes=5))
    assert [o.skipped for o in again.outcomes] == [True, True]
    assert render.calls == []
    assert [o.url for o in again.outcomes] == [o.url for o in first.outcomes]  # the link is still reported

    # one client's data changes: only that one is rendered and published
    changed = _run(store, config, render, T0 + dt.timedelta(minutes=10), overrides={"globex": {"hours": 12}})
    assert [(o.client_key, o.skipped) for o in changed.outcomes] == [("acme", True), ("globex", False)]
    assert render.calls == ["Globex Ltd"]
    events = [(e.client_key, e.action) for e in publishing.audit_events(store)]
    assert events.count(("globex", "publish")) == 2 and events.count(("acme", "publish")) == 1
    store.close()


def test_a_new_link_window_or_changed_settings_publish_again(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    config = make_config(f"file://{tmp_path}/site")
    render = CountingRender()
    _run(store, config, render, T0, expiring=True)
    soon = _run(store, config, render, T0 + dt.timedelta(minutes=10), expiring=True)
    assert [o.skipped for o in soon.outcomes] == [True, True]  # the same window: links still good
    # link_expiry is 1h: at 40 minutes the links are due for re-signing (a new window)
    later = _run(store, config, render, T0 + dt.timedelta(minutes=40), expiring=True)
    assert [o.skipped for o in later.outcomes] == [False, False]
    config.clients[0].visibility.rates = "shown"  # a setting the page depends on
    settings = _run(store, config, render, T0 + dt.timedelta(minutes=41), expiring=True)
    assert [(o.client_key, o.skipped) for o in settings.outcomes] == [("acme", False), ("globex", True)]
    store.close()


def test_bridge_publish_by_hand_always_publishes(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    config = make_config(f"file://{tmp_path}/site")
    render = CountingRender()
    _run(store, config, render, T0)
    manual = publishing.publish_all(store, config, publisher_for(config.publish), render, build_view=views(),
                                    guard=no_leaks, now=T0 + dt.timedelta(minutes=1))
    assert [o.skipped for o in manual.outcomes] == [False, False]
    assert len(render.calls) == 4
    store.close()
