"""`bridge auth`: FreshBooks' authorization-code flow against the sandbox, status, and recovery."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.config import load_config
from bridge.errors import AuthError
from bridge.store import Store
from connectors import build_connector
from connectors import freshbooks_auth as fa
from connectors.freshbooks import REFRESH_TOKEN
from connectors.sandbox import Sandbox

from tests.onboarding.conftest import write_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fb(accounts: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # a FreshBooks source as `bridge init` writes it: app credentials only, no refresh token
    monkeypatch.delenv("FRESHBOOKS_REFRESH_TOKEN", raising=False)
    conf = write_config(accounts, tmp_path, providers=("freshbooks",), monkeypatch=monkeypatch,
                        drop=("refresh_token_env", "account_id", "business_id"))
    monkeypatch.delenv("FRESHBOOKS_REFRESH_TOKEN", raising=False)
    cfg = load_config(conf)
    store = Store(cfg.store.url)
    store.migrate()
    yield conf, cfg.sources[0], store
    store.close()


def test_the_loopback_listener_receives_the_code_and_the_tokens_land_in_the_store(accounts: Sandbox, fb) -> None:
    conf, source, store = fb
    redirect = f"http://127.0.0.1:{free_port()}/freshbooks/callback"
    state = fa.new_state()
    url = fa.authorize_url(source, redirect, state)
    assert url.startswith(accounts.url("freshbooks") + "/oauth/authorize?client_id=sandbox-freshbooks-client-id")
    receiver = fa.LoopbackReceiver(redirect, state)
    try:
        # the browser: FreshBooks' consent page redirects to the listener
        page = httpx.get(url, follow_redirects=True, timeout=10)
        code = receiver.wait(5)
    finally:
        receiver.close()
    assert page.status_code == 200 and "authorized" in page.text and code not in page.text
    fa.exchange_code(source, store, code, redirect)
    assert store.get_secret("freshbooks", REFRESH_TOKEN)
    conn = build_connector(source, tz=load_config(conf).agency.zone, store=store)
    conn.check()  # the stored access token works: no refresh needed
    assert accounts.state("freshbooks").refreshes == 1  # only the code exchange
    assert fa.token_status(source, store).authorized


def test_a_listener_refuses_a_redirect_from_another_attempt(fb) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/cb"
    receiver = fa.LoopbackReceiver(redirect, "the-state-we-sent")
    try:
        page = httpx.get(f"{redirect}?code=abc&state=someone-elses", timeout=10)
        with pytest.raises(AuthError, match="another authorization attempt"):
            receiver.wait(5)
    finally:
        receiver.close()
    assert page.status_code == 400


def test_cli_auth_with_a_pasted_address_then_status_then_discover(accounts: Sandbox, fb) -> None:
    conf, source, store = fb
    runner = CliRunner()
    status = runner.invoke(cli, ["-c", str(conf), "auth", "freshbooks", "--status"])
    assert status.exit_code == 1 and "not authorized; run `bridge auth freshbooks`" in status.output
    # what a person does with a real account: approve in the browser, copy the address it ended on
    redirect = "https://127.0.0.1/clearhours"
    consent = httpx.get(fa.authorize_url(source, redirect, "s1"), follow_redirects=False, timeout=10)
    address = consent.headers["Location"]
    assert address.startswith("https://127.0.0.1/clearhours?code=")
    done = runner.invoke(cli, ["-c", str(conf), "auth", "freshbooks", "--redirect-uri", redirect, "--code", address])
    assert done.exit_code == 0, done.output
    assert "freshbooks: authorized" in done.output
    assert "business_id 8801001, account_id NwD7q2" in done.output
    code = address.split("code=")[1].split("&")[0]
    assert code not in done.output
    status = runner.invoke(cli, ["-c", str(conf), "auth", "freshbooks", "--status"])
    assert status.exit_code == 0 and "authorized (refresh token in the store)" in status.output
    assert "access token    valid until" in status.output
    found = runner.invoke(cli, ["-c", str(conf), "discover"])
    assert "freshbooks client 412204: Café Øresund ApS [EUR]" in found.output


def test_a_code_works_once(accounts: Sandbox, fb) -> None:
    conf, source, store = fb
    redirect = "https://127.0.0.1/clearhours"
    address = httpx.get(fa.authorize_url(source, redirect, "s"), timeout=10).headers["Location"]
    code = fa.code_from(address, "s")
    fa.exchange_code(source, store, code, redirect)
    with pytest.raises(AuthError, match=r"refused the code \(invalid_grant\).*run `bridge auth freshbooks` again"):
        fa.exchange_code(source, store, code, redirect)


def test_a_lost_refresh_answer_is_recovered_by_one_command(accounts: Sandbox, fb, monkeypatch: pytest.MonkeyPatch) -> None:
    conf, source, store = fb
    redirect = "https://127.0.0.1/clearhours"
    runner = CliRunner()

    def authorize() -> None:
        address = httpx.get(fa.authorize_url(source, redirect, "s"), timeout=10).headers["Location"]
        out = runner.invoke(cli, ["-c", str(conf), "auth", "freshbooks", "--redirect-uri", redirect, "--code", address])
        assert out.exit_code == 0, out.output

    authorize()
    # A refresh reached FreshBooks, which spent the stored token and answered - but the answer
    # never arrived (a timeout, a kill). The access token then expires.
    spent = store.get_secret("freshbooks", REFRESH_TOKEN)
    lost = httpx.post(fa.token_url(source), json={"grant_type": "refresh_token", "refresh_token": spent,
                                                  "client_id": "sandbox-freshbooks-client-id",
                                                  "client_secret": "sandbox-freshbooks-client-secret"})
    assert lost.status_code == 200
    store.put_secret("freshbooks", "access_token_expires_at", "0")
    check = runner.invoke(cli, ["-c", str(conf), "check"])
    assert check.exit_code == 1
    assert "invalid_grant" in check.output and "re-authorize with `bridge auth freshbooks`" in check.output
    assert spent not in check.output
    authorize()  # the one command
    check = runner.invoke(cli, ["-c", str(conf), "check"])
    assert check.exit_code == 0 and "freshbooks: OK" in check.output


def test_auth_refuses_a_source_that_uses_a_plain_token(accounts: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_config(accounts, tmp_path, providers=("harvest",), monkeypatch=monkeypatch)
    out = CliRunner().invoke(cli, ["-c", str(conf), "auth", "harvest"])
    assert out.exit_code == 1 and "not with `bridge auth`; see docs/harvest.md" in out.output


def test_pasted_addresses_and_bare_codes() -> None:
    assert fa.code_from("https://x.example/cb?code=abc&state=s1", "s1") == "abc"
    assert fa.code_from("  abc123  ") == "abc123"
    with pytest.raises(AuthError, match="access_denied"):
        fa.code_from("https://x.example/cb?error=access_denied&state=s1", "s1")
    with pytest.raises(Exception, match="no `code=`"):
        fa.code_from("https://x.example/cb?state=s1", "s1")


def test_two_processes_refreshing_at_once_do_not_lock_the_source_out(accounts: Sandbox, fb) -> None:
    conf, source, store = fb
    redirect = "https://127.0.0.1/clearhours"
    address = httpx.get(fa.authorize_url(source, redirect, "s"), timeout=10).headers["Location"]
    fa.exchange_code(source, store, fa.code_from(address, "s"), redirect)
    store.put_secret("freshbooks", "access_token_expires_at", "0")  # near expiry: both will refresh
    conn = build_connector(source, tz=load_config(conf).agency.zone, store=store)
    read_first = conn.tokens._current_refresh_token

    def raced() -> str:
        # this process read the token; before it posts, `bridge run` refreshes with the same one
        token = read_first()
        answer = httpx.post(fa.token_url(source), json={
            "grant_type": "refresh_token", "refresh_token": token, "client_id": "sandbox-freshbooks-client-id",
            "client_secret": "sandbox-freshbooks-client-secret"}).json()
        store.put_secret("freshbooks", REFRESH_TOKEN, answer["refresh_token"])
        from connectors.freshbooks import save_access
        import time as _time

        save_access(store, "freshbooks", answer["access_token"], _time.time() + 3600, _time.time())
        return token

    conn.tokens._current_refresh_token = raced  # type: ignore[method-assign]
    conn.check()  # refused (invalid_grant), then the other process's fresh token is used
    assert accounts.state("freshbooks").refreshes == 2  # the code exchange and the other process's refresh
