"""The local folder target, and publishing orchestration driven through it."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path

import pytest

from bridge import publishing
from bridge.errors import LeakError, PublishError
from bridge.models import PortalLink
from bridge.publisher import RenderedFile
from publishers import publisher_for
from publishers.local import LocalPublisher, folder_from_url
from tests.publishers.conftest import fake_render, make_config, no_leaks, views

TOKEN = secrets.token_urlsafe(24)


def files(hours: int = 10) -> list[RenderedFile]:
    return fake_render({"name": "Acme Ltd", "hours": hours}, LocalPublisher(".").link)


def test_publish_writes_the_client_folder_and_a_manifest(tmp_path: Path) -> None:
    pub = LocalPublisher(tmp_path)
    result = pub.publish(TOKEN, files())
    folder = tmp_path / TOKEN
    assert sorted(p.name for p in folder.iterdir()) == [".manifest.json", "index.html", "timesheet.csv"]
    assert result.uploaded == ["timesheet.csv", "index.html"]
    assert result.url == (folder / "index.html").resolve().as_uri()
    assert result.expires_at is None
    # the page links to its export relatively, so the folder works wherever it is served
    assert b'href="timesheet.csv"' in (folder / "index.html").read_bytes()
    assert not [p for p in folder.iterdir() if p.name.startswith(".publish-")]


def test_republish_writes_only_what_changed_and_deletes_stale(tmp_path: Path) -> None:
    pub = LocalPublisher(tmp_path)
    pub.publish(TOKEN, files() + [RenderedFile("old.pdf", b"%PDF", "application/pdf")])
    before = (tmp_path / TOKEN / "timesheet.csv").stat().st_mtime_ns
    again = pub.publish(TOKEN, files())
    assert again.uploaded == [] and again.deleted == ["old.pdf"]
    assert not (tmp_path / TOKEN / "old.pdf").exists()
    changed = pub.publish(TOKEN, files(hours=12))
    assert changed.uploaded == ["timesheet.csv"]
    assert b"12" in (tmp_path / TOKEN / "timesheet.csv").read_bytes()
    assert (tmp_path / TOKEN / "timesheet.csv").stat().st_mtime_ns >= before


def test_a_file_deleted_by_hand_is_written_again(tmp_path: Path) -> None:
    pub = LocalPublisher(tmp_path)
    pub.publish(TOKEN, files())
    (tmp_path / TOKEN / "timesheet.csv").unlink()
    assert pub.publish(TOKEN, files()).uploaded == ["timesheet.csv"]


def test_interrupted_publish_keeps_old_page_and_next_run_completes(tmp_path: Path, monkeypatch) -> None:
    pub = LocalPublisher(tmp_path)
    pub.publish(TOKEN, files())
    old_page = (tmp_path / TOKEN / "index.html").read_bytes()
    calls = []
    real_replace = os.replace

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # after the export, before the page
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    new_files = files(hours=99)
    new_files[1] = RenderedFile("index.html", b"<h1>new</h1>", "text/html")
    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(PublishError, match="No space left"):
        pub.publish(TOKEN, new_files)
    assert (tmp_path / TOKEN / "index.html").read_bytes() == old_page
    monkeypatch.setattr(os, "replace", real_replace)
    done = pub.publish(TOKEN, new_files)
    assert "index.html" in done.uploaded
    assert (tmp_path / TOKEN / "index.html").read_bytes() == b"<h1>new</h1>"


def test_gzip_encoded_input_is_stored_plain_for_file_urls(tmp_path: Path) -> None:
    import gzip

    LocalPublisher(tmp_path).publish(TOKEN, [RenderedFile("index.html", gzip.compress(b"<p>hi</p>"), "text/html",
                                                          content_encoding="gzip")])
    assert (tmp_path / TOKEN / "index.html").read_bytes() == b"<p>hi</p>"


def test_remove_deletes_the_whole_folder(tmp_path: Path) -> None:
    pub = LocalPublisher(tmp_path)
    pub.publish(TOKEN, files())
    assert pub.remove(TOKEN) == 3
    assert not (tmp_path / TOKEN).exists()
    assert pub.remove(TOKEN) == 0


def test_bad_tokens_never_become_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalPublisher(tmp_path).publish("../../etc", files())


def test_target_urls() -> None:
    assert folder_from_url("file://./site") == Path("./site")
    assert folder_from_url("file:///srv/portals") == Path("/srv/portals")
    assert isinstance(publisher_for(make_config("file://./x").publish), LocalPublisher)
    with pytest.raises(Exception, match="unknown scheme 'ftp'"):
        publisher_for(make_config("ftp://host/x").publish)


# --- orchestration (bridge.publishing) through the local target --------------------------


def run(store, config, **kw):
    return publishing.publish_all(store, config, publisher_for(config.publish), fake_render,
                                  build_view=kw.pop("build_view", views()), guard=kw.pop("guard", no_leaks), **kw)


def test_publish_all_issues_random_tokens_links_and_audit(store, tmp_path: Path) -> None:
    config = make_config(f"file://{tmp_path}/site")
    report = run(store, config)
    assert report.ok and [o.client_key for o in report.outcomes] == ["acme", "globex"]
    rows = {k: publishing.get_link(store, k) for k in ("acme", "globex")}
    assert rows["acme"].token != rows["globex"].token
    for key, row in rows.items():
        assert len(row.token) >= 32 and key not in row.token
        assert (tmp_path / "site" / row.token / "index.html").is_file()
        assert row.url.endswith(f"/{row.token}/index.html") and row.published_at is not None
    actions = [(e.client_key, e.action) for e in publishing.audit_events(store)]
    assert actions == [("acme", "publish"), ("acme", "link_issued"), ("globex", "publish"), ("globex", "link_issued")]
    # nothing changed: nothing written, no new link
    again = run(store, config)
    assert [(o.uploaded, o.link_issued) for o in again.outcomes] == [(0, False), (0, False)]


def test_one_failing_client_does_not_stop_the_others(store, tmp_path: Path) -> None:
    config = make_config(f"file://{tmp_path}", clients=3)

    def guard(client, view, files):
        if client.key == "globex":
            raise LeakError("client 'globex': a hidden rate (95.00) appears in timesheet.csv")

    report = run(store, config, guard=guard)
    assert [(o.client_key, o.ok) for o in report.outcomes] == [("acme", True), ("globex", False), ("initech", True)]
    assert "hidden rate" in report.failed[0].error
    globex = publishing.get_link(store, "globex")
    assert not (tmp_path / globex.token).exists() and globex.url is None
    assert any(e.action == "publish" and "error" in e.detail for e in publishing.audit_events(store, "globex"))


def test_a_renderer_crash_is_reported_per_client(store, tmp_path: Path) -> None:
    config = make_config(f"file://{tmp_path}")

    def render(view, link, token):
        if view["name"].startswith("Acme"):
            raise KeyError("budget")
        return fake_render(view, link)

    report = publishing.publish_all(store, config, publisher_for(config.publish), render, build_view=views(),
                                    guard=no_leaks)
    assert [o.ok for o in report.outcomes] == [False, True]
    assert "KeyError" in report.outcomes[0].error


def test_without_an_injected_guard_the_real_leak_guard_runs(store, tmp_path: Path) -> None:
    from bridge.models import Client

    store.upsert([Client.model_validate({"source": "h", "source_id": "7", "name": "Umbrella Secret Labs"})])
    config = make_config(f"file://{tmp_path}/site", clients=1)
    leaky = lambda client, review: {"name": "Acme Ltd with Umbrella Secret Labs"}  # noqa: E731
    report = publishing.publish_all(store, config, publisher_for(config.publish), fake_render, build_view=leaky)
    assert not report.ok and "another client's name (h:7)" in report.outcomes[0].error
    assert "Umbrella" not in report.outcomes[0].error
    assert list((tmp_path / "site").iterdir()) == []


def test_links_list_and_expire_soon(store, tmp_path: Path) -> None:
    config = make_config(f"file://{tmp_path}", clients=3)
    run(store, config, clients=["acme", "globex"])
    now = publishing.utcnow()
    with store.session() as s:  # pretend acme's link is signed and expires tomorrow
        row = s.get(PortalLink, "acme")
        row.expires_at = now + dt.timedelta(days=1)
        s.add(row)
        s.commit()
    links = publishing.list_links(store, config, now=now)
    assert [(i.client_key, bool(i.url)) for i in links] == [("acme", True), ("globex", True), ("initech", False)]
    soon = publishing.list_links(store, config, expire_within=dt.timedelta(days=2), now=now)
    assert [i.client_key for i in soon] == ["acme"]
    assert publishing.list_links(store, config, expire_within=dt.timedelta(hours=1), now=now) == []


def test_revoke_moves_the_portal_and_kills_the_old_link(store, tmp_path: Path) -> None:
    config = make_config(f"file://{tmp_path}")
    run(store, config)
    old = publishing.get_link(store, "acme")
    other = publishing.get_link(store, "globex")
    assert publishing.probe_url(old.url) == 200
    res = publishing.revoke(store, config, "acme", publisher_for(config.publish), fake_render,
                            build_view=views(), guard=no_leaks)
    new = publishing.get_link(store, "acme")
    assert new.token != old.token and res.url == new.url != old.url
    assert res.removed == 3 and res.old_link_status == 404
    assert not (tmp_path / old.token).exists() and (tmp_path / new.token / "index.html").is_file()
    assert (tmp_path / other.token / "index.html").is_file()  # other clients untouched
    revoked = [e for e in publishing.audit_events(store, "acme") if e.action == "link_revoked"]
    assert len(revoked) == 1 and json.loads(revoked[0].detail)["removed"] == 3


def test_revoke_refuses_to_claim_success_when_the_old_link_still_answers(store, tmp_path: Path) -> None:
    config = make_config(f"file://{tmp_path}", clients=1)
    run(store, config)
    with pytest.raises(PublishError, match="still answers 200"):
        publishing.revoke(store, config, "acme", publisher_for(config.publish), fake_render,
                          build_view=views(), guard=no_leaks, probe=lambda url: 200)


def test_link_window_is_reused_until_refresh_is_due() -> None:
    now = dt.datetime(2025, 3, 20, 12, tzinfo=dt.timezone.utc)
    row = PortalLink(client_key="a", token="t", url="u", expires_at=now + dt.timedelta(days=5))
    day = dt.timedelta(days=1)
    start = publishing.window_start(row, 7 * 86400, day, now)
    assert start == now - dt.timedelta(days=2)  # same window: same signatures
    assert publishing.window_start(row, 7 * 86400, day, now, force=True) == now
    late = now + dt.timedelta(days=4, hours=1)  # less than refresh_before left
    assert publishing.window_start(row, 7 * 86400, day, late) == late
    # refresh_before longer than the link lifetime is capped at half of it
    short = PortalLink(client_key="a", token="t", url="u", expires_at=now + dt.timedelta(minutes=40))
    assert publishing.window_start(short, 3600, day, now) == now - dt.timedelta(minutes=20)


# --- the CLI commands, end to end on a local target ------------------------------------


def test_cli_publish_links_revoke_preview(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    import bridge.cli as cli_mod

    site = tmp_path / "site"
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n[publish]\ntarget = "file://{site}"\n'
        '[[sources]]\nname = "h"\nkind = "harvest"\n'
        '[[clients]]\nkey = "acme"\nname = "Acme Ltd"\nsources = { h = ["1"] }\ncontacts = ["boss@acme.test"]\n'
    )
    from bridge.cli import wiring
    from bridge.models import Client
    from bridge.store import Store

    synced = Store(f"sqlite:///{tmp_path}/s.db")  # `publish` refuses a client whose ids match no synced client
    synced.migrate()
    synced.upsert([Client(source="h", source_id="1", name="Acme Ltd")])
    synced.close()
    monkeypatch.setattr(wiring, "renderer", lambda: fake_render)
    monkeypatch.setattr(publishing, "default_view_builder", lambda store, config, now, **kw: views())
    monkeypatch.setattr(publishing, "default_guard", lambda store, config, now, **kw: no_leaks)
    runner = CliRunner()

    def bridge(*args: str):
        return runner.invoke(cli_mod.cli, ["-c", str(cfg), *args], catch_exceptions=False)

    out = bridge("publish")
    assert out.exit_code == 0, out.output
    token = next(p.name for p in site.iterdir())
    assert f"acme: file://{site}/{token}/index.html" in out.output and "2 uploaded" in out.output
    assert "0 uploaded, 0 deleted, 2 unchanged" in bridge("publish", "--client", "acme").output
    links_out = bridge("links")
    assert "acme: never expires" in links_out.output and token in links_out.output
    assert json.loads(bridge("links", "--json").output)[0]["client"] == "acme"
    assert "No link expires within 2d" in bridge("links", "--expire-soon", "2d").output
    assert bridge("links", "--expire-soon", "soon").exit_code == 2
    other = tmp_path / "check"
    assert bridge("publish", "--out", str(other)).exit_code == 0
    assert (other / token / "index.html").is_file()
    assert token in bridge("links").output  # --out leaves the stored link alone
    preview = bridge("preview", "acme").output.strip()
    assert preview.endswith("/index.html") and Path(preview).is_file() and not preview.startswith(str(site))
    revoked = bridge("revoke", "acme")
    assert "3 old object(s) deleted, old link now answers 404" in revoked.output
    assert not (site / token).exists()
    dry = bridge("invite", "acme", "--to", "boss@acme.test", "--dry-run")
    assert dry.exit_code == 0 and "Subject: Your project portal" in dry.output
    refused = bridge("invite", "acme", "--to", "x@evil.test")
    assert refused.exit_code == 1 and "not one of its contacts" in refused.output
    assert bridge("revoke", "nobody").exit_code == 1


def test_protect_hook_runs_after_the_guard_and_tokens_stay_out_of_audit(store, tmp_path: Path) -> None:
    from bridge.audit import token_fingerprint

    config = make_config(f"file://{tmp_path}", clients=1)
    seen = []

    def guard(client, view, files):
        seen.append(("guard", files[-1].data))

    def protect(client, files):
        seen.append(("protect", files[-1].data))
        return [RenderedFile("index.html", b"<p>encrypted</p>", "text/html")]

    publishing.publish_all(store, config, publisher_for(config.publish), fake_render, build_view=views(),
                           guard=guard, protect=protect)
    assert [s[0] for s in seen] == ["guard", "protect"] and b"Acme" in seen[0][1]
    row = publishing.get_link(store, "acme")
    assert (tmp_path / row.token / "index.html").read_bytes() == b"<p>encrypted</p>"
    assert not (tmp_path / row.token / "timesheet.csv").exists()
    publishing.revoke(store, config, "acme", publisher_for(config.publish), fake_render, build_view=views(),
                      guard=no_leaks)
    new = publishing.get_link(store, "acme")
    events = publishing.audit_events(store, "acme")
    assert all(row.token not in (e.detail or "") and new.token not in (e.detail or "") for e in events)
    revoked = json.loads(events[-1].detail)
    assert revoked["old_token_fp"] == token_fingerprint(row.token) and revoked["token_fp"] == token_fingerprint(new.token)


def test_links_due_for_the_scheduler(store, tmp_path: Path) -> None:
    config = make_config(f"file://{tmp_path}", clients=3)  # link_expiry 1h; refresh_before 1d -> capped at 30m
    run(store, config, clients=["acme", "globex"])
    now = publishing.utcnow()
    with store.session() as s:
        for key, left in (("acme", dt.timedelta(minutes=20)), ("globex", dt.timedelta(minutes=50))):
            row = s.get(PortalLink, key)
            row.expires_at = now + left
            s.add(row)
        s.commit()
    assert publishing.links_due(store, config, now) == ["acme", "initech"]
