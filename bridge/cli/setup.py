"""Commands that set an installation up: init, discover, auth, store copy."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from bridge.cli import wiring
from bridge.cli.base import Env, cli, handle_errors, pass_env
from bridge.errors import BridgeError, ConfigError


@cli.command()
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable). Default: every source.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: clients with their projects.")
@click.option("--toml", "as_toml", is_flag=True, help="Print ready [[clients]] blocks to paste into bridge.toml.")
@pass_env
@handle_errors
def discover(env: Env, sources: tuple[str, ...], as_json: bool, as_toml: bool) -> None:
    """List each source's clients and their projects, with ids, budgets and active state.

    The ids are exactly what `[[clients]] sources = { … }` must name. With --toml, one
    ready block per client; a client with the same name in two sources becomes one
    portal combining both. Needs only the sources in the config (no clients yet).

    \b
    Example:
      bridge discover --source harvest
      bridge discover --toml >> bridge.toml
    """
    from bridge.discovery import as_json as to_json
    from bridge.discovery import discover as find
    from bridge.discovery import text_lines, toml_blocks

    cfg = env.config
    if not cfg.sources:
        raise ConfigError(f"{env.config_path}: no [[sources]] yet; `bridge init` writes them")
    for name in sources:
        cfg.source(name)
    make = wiring.connector_factory(env)
    found: list[Any] = []
    failed = False
    for s in cfg.sources:
        if sources and s.name not in sources:
            continue
        try:
            conn = make(s)
            try:
                found.extend(find(conn, s, cfg.agency.zone))
            finally:
                conn.close()
        except BridgeError as exc:
            failed = True
            click.echo(f"{s.name}: FAILED - {exc}", err=True)
    if as_json:
        click.echo(json.dumps(to_json(found), indent=2, ensure_ascii=False))
    elif as_toml:
        click.echo(toml_blocks(found))
    else:
        for line in text_lines(found):
            click.echo(line)
        if found:
            click.echo("\n`bridge discover --toml` prints these as [[clients]] blocks.", err=True)
    if failed:
        sys.exit(1)


def _freshbooks_source(env: Env, name: str) -> Any:
    s = env.config.source(name)
    if s.kind != "freshbooks":
        raise ConfigError(f"source {name!r} is {s.kind}: it authenticates with a token from the environment "
                          f"({s.token_env or 'token_env'}), not with `bridge auth`; see docs/{s.kind}.md")
    return s


@cli.command()
@click.argument("source")
@click.option("--status", "show_status", is_flag=True, help="Show what the store holds for SOURCE and when it expires.")
@click.option("--code", "pasted", metavar="URL_OR_CODE",
              help="The address the browser ended on after approving (or just its code); skips the listener.")
@click.option("--redirect-uri", help="The app's registered redirect URI (default: the source's redirect_uri, "
                                      "else http://127.0.0.1:8976/freshbooks/callback).")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for the browser's redirect.")
@click.option("--json", "as_json", is_flag=True, help="With --status: machine-readable.")
@pass_env
@handle_errors
def auth(env: Env, source: str, show_status: bool, pasted: str | None, redirect_uri: str | None,
         timeout: int, as_json: bool) -> None:
    """Authorize the bridge with a FreshBooks account (OAuth) and keep the tokens in the store.

    Prints the authorize link: open it, log in, approve. FreshBooks then sends the browser
    to the app's redirect URI with a code. If that URI is http://127.0.0.1:PORT/…, this
    command listens there and finishes by itself; otherwise (FreshBooks registers only
    https URIs) paste the address the browser ended on when asked. Codes live 5 minutes.

    Run it again whenever FreshBooks says invalid_grant (a refresh whose answer was lost,
    a copied store, a revoked app): the new tokens replace the old ones. The access token
    is refreshed only when it nears expiry, not on every sync.

    \b
    Example:
      bridge auth freshbooks
      bridge auth freshbooks --code 'https://127.0.0.1/callback?code=…&state=…'
      bridge auth freshbooks --status
    """
    from connectors import freshbooks_auth as fa

    s = _freshbooks_source(env, source)
    store = env.store
    if show_status:
        st = fa.token_status(s, store)
        if as_json:
            click.echo(json.dumps(st.as_dict(), indent=2))
        else:
            for line in st.lines(time.time()):
                click.echo(line)
        if not st.authorized:
            sys.exit(1)
        return
    uri = fa.redirect_uri_for(s, redirect_uri)
    state = fa.new_state()
    url = fa.authorize_url(s, uri, state)
    if pasted:
        code = fa.code_from(pasted, None)  # a pasted address comes from an earlier link: its state is unknown here
    else:
        click.echo(f"1. Open this link, log in to FreshBooks and approve clearhours:\n\n  {url}\n")
        code = _receive_code(fa, uri, state, timeout)
    done = fa.exchange_code(s, store, code, uri)
    click.echo(f"{s.name}: authorized; tokens stored in the store ({store!r}).")
    # the cheapest call, with the new token: proves it and shows which business it reaches
    conn = wiring.connector_factory(env)(s)
    try:
        conn.check()
        tenant = conn.tenant()
        click.echo(f"{s.name}: OK - business_id {tenant.business_id}, account_id {tenant.account_id}")
    finally:
        conn.close()
    if done.expires_at:
        click.echo("Next: `bridge discover --source " + s.name + "` lists its clients.")


def _receive_code(fa: Any, uri: str, state: str, timeout: int) -> str:
    if fa.is_loopback(uri):
        receiver = fa.LoopbackReceiver(uri, state)
        click.echo(f"2. Waiting up to {timeout} s for the browser to come back to {uri} …")
        try:
            return receiver.wait(timeout)
        finally:
            receiver.close()
    if not sys.stdin.isatty():
        raise ConfigError(f"the redirect URI {uri} is not a loopback address this command can listen on; "
                          "approve in the browser, then run again with --code 'ADDRESS THE BROWSER ENDED ON'")
    pasted = click.prompt("2. Paste the address the browser ended on (or the code)")
    return fa.code_from(pasted, state)
