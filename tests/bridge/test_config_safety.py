"""Config load refuses secrets where names belong, credentials in URLs, and unsafe API URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import load_config, parse_config
from bridge.errors import ConfigError

TOKEN = "2931042.pt.Zx9QmW4rTb7LkP2vN8sHd3Fg6Jc1Ya5E"
HEX_REFRESH = "4f1a9c0e7b3d2a6f8e5c1b9d0a7f3e2c6b8d4a1f9e0c7b5d3a2f6e8c1b4d9a0f"


def _src(**kw) -> dict:
    return {"sources": [{"name": "harvest", "kind": "harvest", "account_id": "1", **kw}]}


@pytest.mark.parametrize("key,value", [
    ("token_env", TOKEN), ("refresh_token_env", HEX_REFRESH), ("client_secret_env", "sk_live_51HxZa9Q2bC8dE7fG"),
    ("token_env", "Bearer abc"), ("client_id_env", "a1b2c3d4-e5f6-47a8-b9c0-d1e2f3a4b5c6"),
])
def test_a_secret_in_an_env_key_is_refused_without_echoing_it(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_src(**{key: value}), "bridge.toml")
    msg = str(info.value)
    assert value not in msg and value[:8] not in msg
    assert f"sources[0]: {key} must name an environment variable" in msg
    assert "bridge.toml" in msg


def test_a_secret_in_smtp_and_alert_env_keys_is_refused_too() -> None:
    with pytest.raises(ConfigError, match="smtp: password_env must name"):
        parse_config({"smtp": {"password_env": "hunter2hunter2hunter2hunter2x9"}})
    with pytest.raises(ConfigError, match="alerts: webhook_url_env must name"):
        parse_config({"alerts": {"webhook_url_env": "https://hooks.slack.com/services/T000/B000/XXXX"}})


@pytest.mark.parametrize("name", ["HARVEST_TOKEN", "harvest_token", "FB_REFRESH_TOKEN_2", "PRODUCTIVE_API_TOKEN_ACME_AGENCY"])
def test_ordinary_variable_names_are_accepted(name: str) -> None:
    assert parse_config(_src(token_env=name)).sources[0].token_env == name


@pytest.mark.parametrize("url", ["https://alice:pa55word@api.harvestapp.com/v2", "https://tok3n@api.harvestapp.com/v2"])
def test_credentials_in_a_url_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_src(base_url=url))
    assert "pa55word" not in str(info.value) and "tok3n" not in str(info.value)
    assert "base_url carries a user name or password" in str(info.value)


def test_a_password_in_the_store_url_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"store": {"url": "postgresql://bridge:s3cretpw@db.internal/clearhours"}})
    assert "s3cretpw" not in str(info.value) and "PGPASSWORD" in str(info.value)
    assert parse_config({"store": {"url": "postgresql://bridge@db.internal/clearhours"}})


@pytest.mark.parametrize("url,why", [
    ("file:///etc/passwd", "must be an http(s) URL"),
    ("javascript:alert(1)", "must be an http(s) URL"),
    ("http://169.254.169.254/latest", "link-local"),
    ("https://169.254.169.254/latest", "link-local"),
    ("http://api.harvestapp.com/v2", "plain http"),
    ("ftp://api.example.com", "must be an http(s) URL"),
])
def test_unsafe_api_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match="base_url") as info:
        parse_config(_src(base_url=url))
    assert why in str(info.value)
    with pytest.raises(ConfigError, match="token_url"):
        parse_config(_src(token_url=url))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/harvest/v2", "http://localhost:9000/v2", "http://[::1]:8000/v2", "https://api.harvestapp.com/v2"])
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert parse_config(_src(base_url=url)).sources[0].base_url == url


def test_plain_http_to_a_remote_host_needs_allow_insecure_http() -> None:
    cfg = parse_config(_src(base_url="http://harvest-proxy.internal/v2", allow_insecure_http=True))
    assert cfg.sources[0].allow_insecure_http


def test_a_config_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder, not a config file"):
        load_config(tmp_path)


def test_a_config_not_in_utf8(tmp_path: Path) -> None:
    p = tmp_path / "bridge.toml"
    p.write_bytes('[agency]\nname = "Caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config(p)
