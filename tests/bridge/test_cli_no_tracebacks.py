"""Broken configs, stores and arguments get one paragraph of advice and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.cli import cli
from bridge.models import Client, PortalLink
from bridge.store import Store

COMMANDS = [["check-config"], ["status"], ["quarantine"], ["sync"], ["links"], ["publish"]]


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


def assert_advice(result: Result, *names: str) -> str:
    """Non-zero exit, a message on stderr naming one of `names`, no traceback anywhere."""
    text = result.output + result.stderr
    assert result.exit_code != 0, text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text
    message = result.stderr.strip()
    assert message, "no message"
    assert "\n\n" not in message  # one paragraph
    if names:
        assert any(n in message for n in names), message
    return message


def _config(tmp_path: Path, store_url: str, extra: str = "") -> Path:
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(f'[store]\nurl = "{store_url}"\n{extra}', encoding="utf-8")
    return cfg


@pytest.mark.parametrize("command", COMMANDS)
def test_a_config_path_that_is_a_folder(tmp_path: Path, command: list[str]) -> None:
    assert_advice(invoke(["-c", str(tmp_path), *command]), str(tmp_path))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_config_not_in_utf8(tmp_path: Path, command: list[str]) -> None:
    p = tmp_path / "bridge.toml"
    p.write_bytes(b'[agency]\nname = "Caf\xe9 \xff"\n')
    assert "UTF-8" in assert_advice(invoke(["-c", str(p), *command]), str(p))


@pytest.mark.parametrize("command", [["status"], ["quarantine"], ["sync"]])
def test_a_store_whose_parent_is_a_file(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "plain").write_text("x")
    cfg = _config(tmp_path, f"sqlite:///{tmp_path / 'plain' / 'store.db'}")
    assert_advice(invoke(["-c", str(cfg), *command]), str(tmp_path / "plain"))


@pytest.mark.parametrize("command", [["status"], ["quarantine"]])
def test_a_store_that_is_not_a_database(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "store.db"
    db.write_bytes(os.urandom(4096))
    cfg = _config(tmp_path, f"sqlite:///{db}")
    assert_advice(invoke(["-c", str(cfg), *command]), str(db), "[store] url")


def test_a_read_only_store(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes read-only files")
    db = tmp_path / "store.db"
    Store(f"sqlite:///{db}").migrate()
    db.chmod(0o400)
    assert_advice(invoke(["-c", str(_config(tmp_path, f"sqlite:///{db}")), "status"]), str(db))


def test_a_tampered_token_in_the_store(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}")
    store.migrate()
    with store.session() as s:
        s.add(PortalLink(client_key="acme", token="../../../etc"))
        s.commit()
    store.upsert([Client.model_validate({"source": "harvest", "source_id": "1", "name": "Acme"})])
    store.close()
    cfg = _config(tmp_path, f"sqlite:///{db}", (
        '[publish]\ntarget = "file://' + str(tmp_path / "site") + '"\n'
        '[[sources]]\nname = "harvest"\nkind = "harvest"\naccount_id = "1"\ntoken_env = "HARVEST_TOKEN"\n'
        '[[clients]]\nkey = "acme"\nname = "Acme"\nsources = { harvest = ["1"] }\n'
    ))
    message = assert_advice(invoke(["-c", str(cfg), "publish"]), "acme")
    assert "bridge revoke acme" in message
    assert not (tmp_path / "etc").exists()


# --- property: whatever the input, advice and an exit status ---------------------------------

KEYS = ["store", "agency", "sources", "clients", "publish", "smtp", "alerts", "stale_after", "url", "name", "kind",
        "timezone", "base_url", "token_env", "every", "target", "visibility", "key", "link_expiry"]
VALUES = st.one_of(
    st.text(max_size=12), st.integers(-5, 10**12), st.booleans(), st.just([]), st.just({}),
    st.sampled_from(["harvest", "sqlite:////nonexistent/dir/x.db", "file:///etc", "javascript:x", "5m", "UTC", "Mars/Base",
                     "http://10.0.0.1/v2", "https://u:p@h/v2", "sk_live_51HxZa9Q2bC8dE7fG0000"]),
)


def _toml_value(v: object) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, list)):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{}"
    return json.dumps(v)


@st.composite
def broken_configs(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "toml", "tables"]))
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    lines = []
    for _ in range(draw(st.integers(1, 5))):
        if kind == "tables" and draw(st.booleans()):
            table = draw(st.sampled_from(["store", "agency", "publish", "[sources]", "[clients]", "smtp"]))
            lines.append(f"[{table}]")
        lines.append(f"{draw(st.sampled_from(KEYS))} = {_toml_value(draw(VALUES))}")
    return "\n".join(lines).encode("utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=broken_configs(), command=st.sampled_from(COMMANDS))
def test_property_broken_configs_never_give_a_traceback(tmp_path_factory: pytest.TempPathFactory, content: bytes, command: list[str]) -> None:
    d = tmp_path_factory.mktemp("cfg")
    p = d / "bridge.toml"
    p.write_bytes(content)
    os.chdir(d)  # a default sqlite store lands here, not in the repository
    result = invoke(["-c", str(p), *command])
    text = result.output + result.stderr
    assert "Traceback" not in text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code != 0 and result.exit_code != 2:
        message = result.stderr.strip()
        assert message and "\n\n" not in message


ARGS = st.lists(st.sampled_from([
    "sync", "status", "quarantine", "check-config", "links", "publish", "--source", "nope", "--full", "--json", "-v",
    "--client", "zz", "--log-format", "xml", "json", "--since", "yesterday", "--expire-soon", "2x", "-c", "--help",
    "revoke", "invite", "--to", "a@b", "passphrase", "--rotate", "audit", "policy", "--print", "",
]), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=ARGS)
def test_property_arbitrary_arguments_never_give_a_traceback(tmp_path_factory: pytest.TempPathFactory, args: list[str]) -> None:
    d = tmp_path_factory.mktemp("args")
    cfg = _config(d, f"sqlite:///{d / 'store.db'}")
    os.chdir(d)
    result = invoke(["-c", str(cfg), *args])
    text = result.output + result.stderr
    assert "Traceback" not in text
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
