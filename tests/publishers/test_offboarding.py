"""Offboarding: every portal on the target (orphans included) and `retire`, on file:// and LocalStack S3."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bridge import publishing
from bridge.audit import token_fingerprint
from bridge.errors import ConfigError
from bridge.offboarding import list_portals, retire, retire_orphans
from bridge.publishing import probe_url
from publishers.local import LocalPublisher
from publishers.s3 import S3Publisher
from tests.publishers.conftest import fake_render, make_config, no_leaks, views


def _publish_then_drop_globex(store, target_url: str, **publish: object):
    """Publish acme, globex and initech; then globex leaves the config and initech is renamed."""
    before = make_config(target_url, clients=3, **publish)
    target = LocalPublisher.from_config(before.publish) if target_url.startswith("file://") else \
        S3Publisher.from_config(before.publish)
    publishing.publish_all(store, before, target, fake_render, build_view=views(), guard=no_leaks)
    links = {k: publishing.get_link(store, k) for k in ("acme", "globex", "initech")}
    after = make_config(target_url, clients=1, **publish)  # only acme is left under its key
    return after, target, links


def test_local_portals_lists_orphans_and_retire_kills_their_links(store, tmp_path: Path) -> None:
    site = tmp_path / "site"
    config, target, links = _publish_then_drop_globex(store, f"file://{site}")
    stray = site / ("x" * 32)  # a portal folder no link row names (copied in, or another store's)
    stray.mkdir()
    (stray / ".manifest.json").write_text("{}")
    found = list_portals(store, config, target)
    assert [(e.client_key, e.state, e.objects) for e in found] == [
        ("acme", "live", 3), ("globex", "orphan", 3), ("initech", "orphan", 3), (None, "unknown", 1)]
    assert found[1].fingerprint == token_fingerprint(links["globex"].token)
    assert links["globex"].token not in found[1].line()

    with pytest.raises(ConfigError, match="still in the config"):
        retire(store, config, target, "acme")
    with pytest.raises(ConfigError, match="still in the config"):  # nor by its fingerprint
        retire(store, config, target, found[0].fingerprint)
    gone = retire(store, config, target, "globex", probe=probe_url)
    assert (gone.client_key, gone.removed, gone.old_link_status) == ("globex", 3, 404)
    assert probe_url(links["globex"].url) == 404 and probe_url(links["acme"].url) == 200
    assert publishing.get_link(store, "globex") is None
    [event] = [e for e in publishing.audit_events(store, "globex") if e.action == "portal_retired"]
    assert json.loads(event.detail) == {"token_fp": token_fingerprint(links["globex"].token), "removed": 3,
                                        "old_link_status": 404}
    done = retire_orphans(store, config, target, probe=probe_url)
    assert [(r.client_key, r.removed) for r in done] == [("initech", 3)]
    assert [(e.client_key, e.state) for e in list_portals(store, config, target)] == [("acme", "live"), (None, "unknown")]
    done = retire_orphans(store, config, target, include_unknown=True)
    assert [(r.client_key, r.removed) for r in done] == [(None, 1)] and not stray.exists()


def test_cli_portals_and_retire(store, tmp_path: Path) -> None:
    site = tmp_path / "site"
    config, target, links = _publish_then_drop_globex(store, f"file://{site}")
    conf = tmp_path / "bridge.toml"
    conf.write_text(f'[store]\nurl = "{store.url}"\n[publish]\ntarget = "file://{site}"\n'
                    '[[sources]]\nname = "h"\nkind = "harvest"\n'
                    '[[clients]]\nkey = "acme"\nname = "Acme Ltd"\nsources = { h = ["0"] }\n')
    runner = CliRunner()
    out = runner.invoke(cli_(), ["portals", "-c", str(conf)])
    assert out.exit_code == 1
    assert f"globex [{token_fingerprint(links['globex'].token)}]: 3 object(s)" in out.output
    assert "ORPHAN: not in the config any more" in out.output
    assert links["globex"].token not in out.output
    as_json = json.loads(runner.invoke(cli_(), ["-c", str(conf), "portals", "--json"]).output)
    assert [(p["client"], p["state"]) for p in as_json] == [("acme", "live"), ("globex", "orphan"), ("initech", "orphan")]
    out = runner.invoke(cli_(), ["-c", str(conf), "retire", "globex"])
    assert out.exit_code == 0 and "globex: retired; 3 object(s) deleted, old link now answers 404." in out.output
    out = runner.invoke(cli_(), ["-c", str(conf), "retire", "--orphans"])
    assert "initech: retired; 3 object(s) deleted" in out.output
    out = runner.invoke(cli_(), ["-c", str(conf), "portals"])
    assert out.exit_code == 0 and out.output.startswith("acme [")
    out = runner.invoke(cli_(), ["-c", str(conf), "retire"])
    assert out.exit_code == 2 and "give either KEY or --orphans" in out.output


def cli_():
    from bridge.cli import cli

    return cli


@pytest.mark.s3
def test_s3_portals_lists_orphans_and_retire_deletes_the_objects(store, localstack: str, bucket: str) -> None:
    config, target, links = _publish_then_drop_globex(store, f"s3://{bucket}/portals", endpoint_url=localstack,
                                                      region="us-east-1")
    assert httpx.get(links["globex"].url).status_code == 200
    found = list_portals(store, config, target)
    assert [(e.client_key, e.state, e.objects) for e in found] == [
        ("acme", "live", 3), ("globex", "orphan", 3), ("initech", "orphan", 3)]
    gone = retire(store, config, target, "globex", probe=probe_url)
    assert gone.removed == 3 and gone.old_link_status in (403, 404)
    assert httpx.get(links["globex"].url).status_code in (403, 404)
    assert httpx.get(links["acme"].url).status_code == 200
    keys = [o["Key"] for o in target.client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if links["globex"].token in k]
    assert len([k for k in keys if links["initech"].token in k]) == 3
    assert [r.client_key for r in retire_orphans(store, config, target, probe=probe_url)] == ["initech"]
    assert [e.client_key for e in list_portals(store, config, target)] == ["acme"]
