"""No secret reaches any output: logs, errors, the store's columns, JSON, files beside the store.

Every provider is pointed at a hostile local server that repeats back whatever it was
sent (headers, query and body) in its error answers, with 401s, 500s and a token endpoint
that refuses. Each source's secrets are distinctive strings; after the failing runs every
byte the bridge produced is searched for them, and for their first 12 characters.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bridge.cli import cli
from bridge.store import Store

SECRETS = {
    "HARVEST_TOKEN": "hv-SECRET-7f3a9c1e5b2d8f4a6c0e",
    "PRODUCTIVE_TOKEN": "pr-SECRET-2b8d4f6a0c1e3a5b7d9f",
    "FRESHBOOKS_CLIENT_ID": "fbid-SECRET-9a1c3e5b7d0f2a4c6e8b",
    "FRESHBOOKS_CLIENT_SECRET": "fbcs-SECRET-4e6a8c0b2d1f3e5a7c9d",
    "FRESHBOOKS_REFRESH_TOKEN": "fbrt-SECRET-6c8e0a2b4d3f5a7c9e1b",
    "SMTP_PASSWORD": "smtp-SECRET-1d3f5b7a9c2e4a6c8e0f",
    "WEBHOOK_URL": "https://hooks.example/SECRET-8b0d2f4a6c5e7a9c1e3d",
}


class Echo(BaseHTTPRequestHandler):
    """Refuses everything, repeating the request back in the answer (a hostile provider)."""

    def _echo(self, status: int, body: bytes = b"") -> None:
        said = {"error": "invalid_grant" if self.command == "POST" else "unauthorized",
                # the credentials first, so no truncation of the provider's words can hide them
                "error_description": f"you sent {self.headers.get('Authorization')} {self.headers.get('X-Auth-Token')} "
                                     f"{body.decode(errors='replace')} {self.path}",
                "path": self.path, "headers": dict(self.headers), "body": body.decode(errors="replace")}
        out = json.dumps(said).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo-Auth", self.headers.get("Authorization", "") + self.headers.get("X-Auth-Token", ""))
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self) -> None:  # noqa: N802
        self._echo(500 if "projects" in self.path else 401)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._echo(400, body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server():  # type: ignore[no-untyped-def]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _config(tmp_path: Path, base: str) -> Path:
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(f"""
[store]
url = "sqlite:///{tmp_path / 'store.db'}"

[smtp]
password_env = "SMTP_PASSWORD"
user_env = "SMTP_PASSWORD"

[alerts]
webhook_url_env = "WEBHOOK_URL"

[[sources]]
name = "harvest"
kind = "harvest"
base_url = "{base}/harvest/v2"
account_id = "100001"
token_env = "HARVEST_TOKEN"
timeout_seconds = 2

[[sources]]
name = "productive"
kind = "productive"
base_url = "{base}/productive/api/v2"
organization_id = "200001"
token_env = "PRODUCTIVE_TOKEN"
timeout_seconds = 2

[[sources]]
name = "freshbooks"
kind = "freshbooks"
base_url = "{base}/freshbooks"
token_url = "{base}/freshbooks/auth/oauth/token"
account_id = "NwD7q2"
business_id = "8801001"
client_id_env = "FRESHBOOKS_CLIENT_ID"
client_secret_env = "FRESHBOOKS_CLIENT_SECRET"
refresh_token_env = "FRESHBOOKS_REFRESH_TOKEN"
timeout_seconds = 2

[[clients]]
key = "acme"
name = "Acme"
sources = {{ harvest = ["1"] }}

[publish]
target = "file://{tmp_path / 'site'}"
""", encoding="utf-8")
    return cfg


def _needles() -> list[str]:
    out = []
    for value in SECRETS.values():
        out += [value, value[:12], value[-12:]]
    return out


def _store_text(db: Path) -> dict[str, str]:
    """Every text value in every table, except the one place a rotating credential must live."""
    store = Store(f"sqlite:///{db}")
    out: dict[str, str] = {}
    with store.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')).mappings():
                for col, value in row.items():
                    if table == "source_secrets" and col == "value":
                        continue  # FreshBooks' issued refresh/access tokens: stored on purpose (README)
                    if value is not None:
                        out[f"{table}.{col}"] = out.get(f"{table}.{col}", "") + " " + str(value)
    store.close()
    return out


def test_no_secret_reaches_logs_errors_store_json_or_files(tmp_path: Path, echo_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    cfg = _config(tmp_path, echo_server)
    runner = CliRunner()
    outputs: dict[str, str] = {}
    for args in (
        ["-vv", "--log-format", "json", "sync"],
        ["-vv", "sync", "--json"],
        ["-vv", "check"],
        ["status", "--json"],
        ["status"],
        ["quarantine", "--json"],
        ["check-config"],
    ):
        result = runner.invoke(cli, ["-c", str(cfg), *args])
        assert "Traceback" not in result.output + result.stderr, (args, result.stderr)
        outputs[" ".join(args)] = result.stdout + "\n" + result.stderr
    # the runs really failed, and said why (so the search below looks at real error text)
    assert "401" in outputs["-vv check"] or "refused the credentials" in outputs["-vv check"]
    failed = outputs["-vv sync --json"]
    assert '"status": "failed"' in failed

    found = []
    for where, text in outputs.items():
        found += [(f"output of `bridge {where}`", n) for n in _needles() if n in text]
    for column, text in _store_text(tmp_path / "store.db").items():
        found += [(f"store column {column}", n) for n in _needles() if n in text]
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name != "bridge.toml" and not path.name.startswith("store.db"):
            data = path.read_bytes().decode("utf-8", errors="replace")
            found += [(f"file {path.name}", n) for n in _needles() if n in data]
    assert found == [], found
