"""`bridge init`: a commented, valid bridge.toml from answers or flags, never holding a secret."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner

from bridge.cli import cli
from bridge.config import load_config


def test_non_interactive_init_writes_a_valid_commented_config(tmp_path: Path) -> None:
    conf = tmp_path / "etc" / "bridge.toml"
    out = CliRunner().invoke(cli, [
        "-c", str(conf), "init", "-y", "--agency", "Nordwind Digital", "--timezone", "Europe/Berlin",
        "--source", "harvest", "--harvest-account-id", "123456", "--source", "freshbooks",
        "--source", "productive", "--productive-organization-id", "24311", "--productive-token-env", "PROD_TOKEN",
        "--base-url", "harvest=http://127.0.0.1:8765/harvest/v2", "--target", "s3://portals/clients"])
    assert out.exit_code == 0, out.output
    text = conf.read_text()
    data = tomllib.loads(text)
    assert data["agency"] == {"name": "Nordwind Digital", "timezone": "Europe/Berlin"}
    assert data["sources"] == [
        {"name": "harvest", "kind": "harvest", "base_url": "http://127.0.0.1:8765/harvest/v2",
         "account_id": "123456", "token_env": "HARVEST_TOKEN"},
        {"name": "freshbooks", "kind": "freshbooks", "redirect_uri": "http://127.0.0.1:8976/freshbooks/callback",
         "client_id_env": "FRESHBOOKS_CLIENT_ID", "client_secret_env": "FRESHBOOKS_CLIENT_SECRET"},
        {"name": "productive", "kind": "productive", "organization_id": "24311", "token_env": "PROD_TOKEN",
         "money_scale": 100},
    ]
    assert data["publish"] == {"target": "s3://portals/clients"} and "smtp" not in data
    assert "# NAME of the environment variable holding the personal access token" in text
    assert "docs/harvest.md" in text and "bridge auth freshbooks" in text
    cfg = load_config(conf)  # valid, and its sqlite store sits next to it
    assert cfg.store.url == f"sqlite:///{conf.parent.resolve()}/clearhours.db"
    assert "export PROD_TOKEN=…" in out.output and f"bridge -c {conf} auth freshbooks" in out.output


def test_interactive_init_refuses_a_pasted_token_where_a_variable_name_belongs(tmp_path: Path) -> None:
    conf = tmp_path / "bridge.toml"
    secret = "pat-1234567.abcdefABCDEF0123456789"
    answers = "\n".join([
        "Nordwind", "Europe/Berlin", "",          # agency, zone, store (default)
        "harvest",                                 # trackers
        "123456",                                  # account id
        secret,                                    # a token pasted by mistake ...
        "MY_HARVEST_TOKEN",                        # ... then the variable's name
        "file://./portals", "Alice <alice@nordwind.example>",
    ]) + "\n"
    out = CliRunner().invoke(cli, ["-c", str(conf), "init"], input=answers)
    assert out.exit_code == 0, out.output
    assert "must be the NAME of an environment variable" in out.output
    text = conf.read_text()
    assert secret not in text
    data = tomllib.loads(text)
    assert data["sources"][0]["token_env"] == "MY_HARVEST_TOKEN"
    assert data["agency"]["contact"] == "Alice <alice@nordwind.example>"
    assert data["publish"]["target"] == "file://./portals"


def test_init_keeps_an_existing_config_unless_forced(tmp_path: Path) -> None:
    conf = tmp_path / "bridge.toml"
    conf.write_text("# mine\n")
    args = ["-c", str(conf), "init", "-y", "--agency", "A"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 1 and "exists; choose another path with -c, or pass --force" in out.output
    assert conf.read_text() == "# mine\n"
    assert CliRunner().invoke(cli, args + ["--force"]).exit_code == 0


def test_non_interactive_init_names_the_missing_option(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["-c", str(tmp_path / "b.toml"), "init", "-y", "--agency", "A", "--source", "harvest"])
    assert out.exit_code == 1 and "--harvest-account-id: needed" in out.output
    out = CliRunner().invoke(cli, ["-c", str(tmp_path / "b.toml"), "init", "-y", "--agency", "A", "--source", "harvest",
                                   "--harvest-account-id", "1", "--harvest-token-env", "pat-123.secret"])
    assert out.exit_code == 1 and "must be the NAME of an environment variable" in out.output
    assert "pat-123.secret" not in out.output
    assert not (tmp_path / "b.toml").exists()
