"""The command line around descriptions: `bridge publish` says what was held back,
`bridge review` lists it, and `bridge demo` fails when a portal did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.cli import wiring
from bridge.cli.base import Env
from bridge.cli.demo import _demo_publish
from bridge.errors import BridgeError
from bridge.store import Store
from connectors.sandbox.demo import to_toml
from tests.helpers import adversarial_agency as adv


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.migrate()
    adv.populate(store)
    store.close()
    data = {
        "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
        "agency": {"name": "Northwind Studio", "timezone": "Europe/Berlin"},
        "sources": [{"name": adv.SRC, "kind": "harvest"}],
        "clients": [
            {"key": adv.OUR_KEY, "name": adv.OUR_NAME, "sources": {adv.SRC: ["c1"]},
             "visibility": {"descriptions": "detailed", "view": "realtime", "team_names": "first_name"}},
            {"key": "globex", "name": "Globex Corporation", "sources": {adv.SRC: ["c2"]}},
        ],
        "redact": {"terms": ["Project Falcon"], "patterns": [r"\bJIRA-\d+\b"], "allow_domains": ["github.com"]},
        "publish": {"target": f"file://{tmp_path / 'site'}"},
    }
    path = tmp_path / "bridge.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    return path


def bridge(cfg: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["-c", str(cfg), *args], catch_exceptions=False)


def test_publish_says_what_was_held_back_and_review_lists_it(cfg: Path) -> None:
    result = bridge(cfg, "publish")
    assert result.exit_code == 0, result.output
    notes = {f"e{i + 1}": n for i, n in enumerate(adv.CORPUS)}  # the ids populate() gives
    redacted, _ = adv.expected(notes, adv.config(None).client(adv.OUR_KEY).visibility.model_copy(update={"team_names": "first_name"}))
    assert f"1 description withheld, {len(redacted)} redacted: run `bridge review {adv.OUR_KEY}`" in result.output

    review = bridge(cfg, "review", "--client", adv.OUR_KEY)
    assert review.exit_code == 0, review.output
    lines = review.output.splitlines()
    assert lines[0].startswith(f"{adv.OUR_KEY}: 1 withheld, {len(redacted)} redacted (published ")
    assert lines[1].split() == ["withheld", "2025-02-27", "hv:e22", "Website", "Relaunch", "/", "Emma"]
    assert lines[2].strip() == "a hidden rate (time_entries.billable_rate)"
    assert "Globex" not in review.output and "Schmidt" not in review.output

    data = json.loads(bridge(cfg, "review", "--json").output)
    assert len(data) == 1 + len(redacted)
    assert {d["entry_id"] for d in data if d["action"] == "redacted"} == redacted
    first = data[0]
    assert set(first) == {"client", "published_at", "action", "source", "entry_id", "date", "project", "person", "reasons"}
    assert [d["entry_id"] for d in json.loads(bridge(cfg, "review", "--withheld", "--json").output)] == ["e22"]

    assert "Nothing was redacted or withheld" in bridge(cfg, "review", "--client", "globex").output
    unknown = CliRunner().invoke(cli, ["-c", str(cfg), "review", "--client", "nope"])
    assert unknown.exit_code == 1 and "no client 'nope'" in unknown.output and "Traceback" not in unknown.output


def test_review_help_explains_itself(cfg: Path) -> None:
    out = " ".join(bridge(cfg, "review", "--help").output.split())
    assert "details withheld" in out and "bridge review --client acme" in out


def test_demo_publish_fails_and_names_the_portal_that_failed(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = wiring.renderer()

    def render(view, link, token):  # type: ignore[no-untyped-def]
        if view.client_name == "Globex Corporation":
            raise KeyError("budget")
        return real(view, link, token)

    monkeypatch.setattr(wiring, "renderer", lambda: render)
    env = Env(str(cfg))
    with pytest.raises(BridgeError, match=r"1 of 2 demo portals failed to publish \(globex\)"):
        _demo_publish(env, cfg.parent)
