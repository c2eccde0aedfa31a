"""Config validation: the example file is valid, and every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import load_config, parse_config, parse_duration
from bridge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_validates_and_documents_every_key() -> None:
    cfg = load_config(ROOT / "config" / "bridge.example.toml")
    assert [s.kind for s in cfg.sources] == ["harvest", "freshbooks", "productive"]
    assert cfg.clients[0].visibility.team_names == "first_name"
    text = (ROOT / "config" / "bridge.example.toml").read_text()
    # each key line is preceded by a comment line (or is a commented-out example)
    lines = text.splitlines()
    documented: set[str] = set()
    for i, line in enumerate(lines):
        if "=" in line and not line.lstrip().startswith("#") and not line.startswith("["):
            key = line.split("=")[0].strip()
            above = lines[i - 1].strip()
            if above.startswith("[") and lines[i - 2].strip().startswith("#"):
                above = lines[i - 2].strip()  # a documented table of free-form keys (glossary)
            # a comment may explain a small group of keys; a key repeated in a later
            # [[sources]] block was explained in the first one
            assert above.startswith("#") or "=" in above or key in documented, f"undocumented key: {line!r}"
            documented.add(key)


def test_error_names_file_key_and_choices(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('[[sources]]\nname = "a"\nkind = "harvest"\n[[sources]]\nname = "b"\nkind = "harvset"\n')
    with pytest.raises(ConfigError) as err:
        load_config(p)
    assert str(err.value) == f"{p}: sources[1].kind: 'harvset' is not one of harvest, freshbooks, productive"


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"agency": {"timezone": "Mars/Olympus"}}, "agency.timezone: 'Mars/Olympus' is not an IANA time zone"),
        ({"agency": {"week_start": "funday"}}, "agency.week_start: 'funday' is not one of monday"),
        ({"sources": [{"name": "h", "kind": "harvest", "tokne_env": "X"}]}, "sources[0].tokne_env: unknown key"),
        ({"clients": [{"key": "a", "name": "A", "sources": {"nope": ["1"]}}]}, "'nope' is not a configured source"),
        ({"clients": [{"key": "Bad Key", "name": "A", "sources": {}}]}, "clients[0].key: 'Bad Key' must be lower-case"),
        ({"clients": [{"key": "a", "name": "A", "sources": {}, "visibility": {"rates": "visible"}}]}, "clients[0].visibility.rates"),
        ({"sources": [{"name": "h", "kind": "harvest"}, {"name": "h", "kind": "productive"}]}, "source names must be unique"),
        # "Ask about this" links are mailto: links to the contact: it must hold an address
        ({"agency": {"contact": "Alice from accounts"}}, "agency.contact: 'Alice from accounts' holds no e-mail address"),
        ({"agency": {"contact": "Alice <alice@localhost>"}}, "write it like 'Alice Martin <alice@agency.example>'"),
        ({"clients": [{"key": "a", "name": "A", "sources": {}, "ask_about": "sometimes"}]}, "clients[0].ask_about"),
    ],
)
def test_errors_are_specific(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, "cfg.toml")
    assert expected in str(err.value)
    assert str(err.value).startswith("cfg.toml: ")


def test_missing_file_and_bad_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file; copy config/bridge.example.toml"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "x.toml"
    bad.write_text("[store\nurl=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_secret_reads_named_env_var_and_never_the_value_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config({"sources": [{"name": "h", "kind": "harvest", "token_env": "H_TOKEN"}]})
    monkeypatch.delenv("H_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="environment variable H_TOKEN .* is not set"):
        cfg.sources[0].secret("token_env")
    monkeypatch.setenv("H_TOKEN", "s3cr3t-value")
    assert cfg.sources[0].secret("token_env") == "s3cr3t-value"


def test_durations() -> None:
    assert parse_duration("5m").total_seconds() == 300
    assert parse_duration("7d").total_seconds() == 604800
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_example_config_has_a_budget_override() -> None:
    cfg = load_config(ROOT / "config" / "bridge.example.toml")
    b = cfg.clients[0].budgets[0]
    assert (b.project, b.period, b.kind, b.amount, b.hourly_rate) == ("freshbooks:14501002", "month", "hours", 40, None)
    assert (b.source, b.ref) == ("freshbooks", "14501002")


def _client_with(budgets: list) -> dict:
    return {"sources": [{"name": "fb", "kind": "freshbooks"}],
            "clients": [{"key": "a", "name": "A", "sources": {"fb": ["7"]}, "budgets": budgets}]}


@pytest.mark.parametrize(
    "budgets, expected",
    [
        ([{"project": "14501002", "period": "month"}],
         "clients[0].budgets[0].project: '14501002' must be '<source>:<project id or name>', like 'freshbooks:14501002'"),
        ([{"project": "fb:1", "period": "weekly"}], "clients[0].budgets[0].period: Input should be 'month' or 'total'"),
        ([{"project": "fb:1", "kind": "hours"}], "clients[0].budgets[0]: fb:1: kind and amount go together"),
        ([{"project": "fb:1", "kind": "hours", "amount": -5}], "clients[0].budgets[0].amount: Input should be greater than 0"),
        ([{"project": "fb:1"}], "clients[0].budgets[0]: fb:1: says nothing to override"),
        ([{"project": "fb:1", "period": "month", "budget": 3}], "clients[0].budgets[0].budget: unknown key"),
        ([{"project": "harvest:1", "period": "month"}],
         "clients[0]: budgets[0].project: source 'harvest' is not one of this client's sources (fb)"),
        ([{"project": "fb:1", "period": "month"}, {"project": "fb:1", "period": "total"}],
         "clients[0]: budgets[1].project: 'fb:1' is listed twice"),
    ],
)
def test_budget_override_errors_name_file_key_and_problem(budgets: list, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_client_with(budgets), "bridge.toml")
    assert str(err.value).startswith(f"bridge.toml: {expected}")
