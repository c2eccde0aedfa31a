"""Real servers on 127.0.0.1 for publishing tests: LocalStack S3 and an aiosmtpd SMTP sink.

LocalStack lives in its own venv (.venv-s3emu, made by `bash .ci/localstack.sh`) because
its extras pin boto3 exactly. It is the only local S3 found that really refuses expired,
tampered and moved presigned URLs (see shared/reference/s3-servers.md), so it checks our
signatures honestly. One server per test session; each test gets its own bucket.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
S3EMU_PYTHON = Path(os.environ.get("BRIDGE_S3EMU_PYTHON", ROOT / ".venv-s3emu" / "bin" / "python"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Endpoint URL of a LocalStack S3 on a free loopback port, signature checks on."""
    if not S3EMU_PYTHON.exists():
        skip_or_fail(f"LocalStack venv missing ({S3EMU_PYTHON}); run `bash .ci/localstack.sh`")
    data = tmp_path_factory.mktemp("localstack")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER": "hypercorn",
        "SERVICES": "s3",
        "EAGER_SERVICE_LOADING": "1",
        "S3_SKIP_SIGNATURE_VALIDATION": "0",
        "DISABLE_EVENTS": "1",
        "DNS_ADDRESS": "0",
        "LOCALSTACK_VOLUME_DIR": str(data),
        "FILESYSTEM_ROOT": str(data),
    }
    log_path = data / "localstack.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(S3EMU_PYTHON), "-m", "localstack.runtime.main"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"LocalStack exited with {proc.returncode}; log: {log_path}")
            try:
                r = httpx.get(f"{endpoint}/_localstack/health", timeout=1)
                if r.json().get("services", {}).get("s3") in ("running", "available"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"LocalStack did not become healthy in 60 s; log: {log_path}")
            time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        try:
            # LocalStack's hypercorn gateway can sit out SIGTERM for its full grace period;
            # its data is a temporary folder, so a short wait then a kill loses nothing
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """LocalStack's credentials through the standard chain (env), never through config."""
    for k in list(os.environ):
        if k.startswith("AWS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bucket(localstack: str, aws_env: None) -> str:
    """A fresh private bucket for one test."""
    import boto3

    name = "portals-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=localstack, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, int, list]]:
    """An aiosmtpd server on loopback that keeps every message it receives."""
    from aiosmtpd.controller import Controller

    received: list = []

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            received.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port, received
    finally:
        controller.stop()


# --- a stand-in renderer and config for publishing tests ---------------------------------

from bridge.config import Config, parse_config  # noqa: E402
from bridge.publisher import RenderedFile  # noqa: E402


def fake_render(view: dict, link, token: str = "") -> list[RenderedFile]:
    """Shaped like publishers.render.render_portal: files in memory, export links via `link`."""
    csv = f"week,hours\n2025-W11,{view.get('hours', 10)}\n".encode()
    page = (
        f"<!doctype html><title>{view['name']}</title><h1>{view['name']}</h1>"
        f"<a href=\"{link('ignored', 'timesheet.csv')}\">CSV</a>"
    ).encode()
    return [
        RenderedFile("timesheet.csv", csv, "text/csv; charset=utf-8", download_name=f"{view['name']} hours.csv"),
        RenderedFile("index.html", page, "text/html; charset=utf-8"),
    ]


def make_config(target: str, *, clients: int = 2, **publish: object) -> Config:
    names = ["acme", "globex", "initech", "umbrella"][:clients]
    return parse_config({
        "agency": {"name": "Northwind Studio", "contact": "Pat <pat@northwind.test>", "timezone": "Europe/Berlin"},
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [
            {"key": n, "name": n.title() + " Ltd", "sources": {"h": [str(i)]}, "contacts": [f"boss@{n}.test"],
             "link_expiry": "1h"}
            for i, n in enumerate(names)
        ],
        "publish": {"target": target, **publish},
    })


def views(overrides: dict | None = None):
    """build_view for tests: the client's name plus per-client overrides (e.g. hours)."""
    overrides = overrides or {}
    return lambda client, review=None: {"name": client.name, **overrides.get(client.key, {})}


def no_leaks(client, view, files) -> None:
    return None
