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


# --- bridge init ------------------------------------------------------------------------------

_FLAG_VALUES = {  # (kind, key) -> the option carrying it
    ("harvest", "account_id"): "harvest_account_id", ("harvest", "token_env"): "harvest_token_env",
    ("freshbooks", "client_id_env"): "freshbooks_client_id_env",
    ("freshbooks", "client_secret_env"): "freshbooks_client_secret_env",
    ("freshbooks", "redirect_uri"): "freshbooks_redirect_uri",
    ("productive", "organization_id"): "productive_organization_id", ("productive", "token_env"): "productive_token_env",
}


@cli.command()
@click.option("--non-interactive", "-y", "batch", is_flag=True, help="Ask nothing: take every answer from the options.")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@click.option("--agency", help="Agency name shown on every portal.")
@click.option("--timezone", help="IANA time zone, e.g. Europe/Berlin.")
@click.option("--store", help="Store URL (default sqlite:///clearhours.db, next to the config file).")
@click.option("--target", help="Publish target: file://DIR or s3://bucket/prefix (default file://./site).")
@click.option("--contact", help="Whom clients should ask, e.g. 'Alice <alice@agency.example>'.")
@click.option("--source", "kinds", multiple=True, type=click.Choice(["harvest", "freshbooks", "productive"]),
              help="A tracker to sync from (repeatable).")
@click.option("--base-url", "base_urls", multiple=True, metavar="KIND=URL",
              help="API base URL for a kind when not the real one (the sandbox), e.g. harvest=http://127.0.0.1:8765/harvest/v2.")
@click.option("--harvest-account-id", help="Harvest account id.")
@click.option("--harvest-token-env", help="NAME of the env var holding the Harvest token [HARVEST_TOKEN].")
@click.option("--freshbooks-client-id-env", help="NAME of the env var holding the app's client id [FRESHBOOKS_CLIENT_ID].")
@click.option("--freshbooks-client-secret-env", help="NAME of the env var holding the client secret [FRESHBOOKS_CLIENT_SECRET].")
@click.option("--freshbooks-redirect-uri", help="The redirect URI registered in the FreshBooks app.")
@click.option("--productive-organization-id", help="Productive organization id.")
@click.option("--productive-token-env", help="NAME of the env var holding the Productive token [PRODUCTIVE_TOKEN].")
@pass_env
@handle_errors
def init(env: Env, batch: bool, force: bool, agency: str | None, timezone: str | None, store: str | None,
         target: str | None, contact: str | None, kinds: tuple[str, ...], base_urls: tuple[str, ...],
         **per_kind: str | None) -> None:
    """Write a commented bridge.toml: agency, store, sources and publish target.

    Asks for each answer (or takes it from the options with --non-interactive). For
    credentials it asks only for the NAMES of the environment variables that will hold
    them: no secret is ever written to the file. Writes to -c PATH (default
    ./bridge.toml) and prints the next steps: export the secrets, `bridge auth` for
    FreshBooks, `bridge check`, `bridge discover --toml` for the clients.

    \b
    Example:
      bridge -c /etc/clearhours/bridge.toml init
      bridge init -y --agency "Nordwind" --timezone Europe/Berlin \\
        --source harvest --harvest-account-id 123456 --source freshbooks
    """
    from pathlib import Path

    from bridge import initconfig as ic

    path = Path(env.config_path)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; choose another path with -c, or pass --force to replace it")
    bases = {}
    for item in base_urls:
        kind, sep, url = item.partition("=")
        if not sep or kind not in ic.KINDS:
            raise click.BadParameter(f"{item!r} is not KIND=URL with KIND one of {', '.join(ic.KINDS)}",
                                     param_hint="--base-url")
        bases[kind] = url

    def ask(value: str | None, question: str, default: str | None = None, *, required: bool = True,
            flag: str = "", check: Any = None) -> str | None:
        while True:
            if value is None and not batch:
                value = click.prompt(question, default=default or ("" if not required else None),
                                     show_default=bool(default)) or None
            if value is None:
                value = default
            if value is None and required:
                raise ConfigError(f"{flag or question}: needed (give it as an option, or run without -y)")
            try:
                return check(value) if (check and value is not None) else value
            except ConfigError as exc:
                if batch:
                    raise
                click.echo(str(exc), err=True)
                value = None

    answers = ic.Answers(agency=str(ask(agency, "Agency name (shown on every portal)", flag="--agency")))
    answers.timezone = str(ask(timezone, "Time zone (IANA, e.g. Europe/Berlin)", "UTC", check=ic.check_timezone))
    answers.store = str(ask(store, "Store URL", "sqlite:///clearhours.db"))
    chosen = list(dict.fromkeys(kinds))
    if not chosen and not batch:
        raw = click.prompt("Trackers to sync from (comma-separated: harvest, freshbooks, productive)",
                           default="harvest")
        chosen = [k.strip() for k in raw.split(",") if k.strip()]
    for kind in chosen:
        values: dict[str, str | None] = {"base_url": bases.get(kind)}
        names: dict[str, str | None] = {}
        for key, question, default in ic.PLAIN.get(kind, []):
            flag = _FLAG_VALUES.get((kind, key), "")
            values[key] = ask(per_kind.get(flag), f"{kind}: {question}", default,
                              flag="--" + flag.replace("_", "-"))
        for key, default, what in ic.SECRETS.get(kind, []):
            flag = _FLAG_VALUES.get((kind, key), "")
            names[key] = ask(per_kind.get(flag), f"{kind}: NAME of the environment variable for the {what}",
                             default, flag="--" + flag.replace("_", "-"),
                             check=lambda v, w=what: ic.check_env_name(v, f"{kind}: the {w} variable"))
        answers.sources.append(ic.source_answer(kind, values=values, env=names))
    answers.target = str(ask(target, "Publish target (file://DIR or s3://bucket/prefix)", "file://./site"))
    answers.contact = ask(contact, "Whom should clients ask? (optional)", required=False)
    text = ic.render(answers)
    ic.write(path, text, force=force)
    click.echo(f"Wrote {path} (no secrets in it).")
    for line in ic.next_steps(answers, path):
        click.echo(line)


# --- bridge store copy ------------------------------------------------------------------------


@cli.group()
def store() -> None:
    """Store maintenance: move an installation to another database (`bridge store copy`)."""


@store.command("copy")
@click.argument("src_url")
@click.argument("dst_url")
@click.option("--keep-source-credentials", is_flag=True,
              help="Leave FreshBooks' rotating tokens in SRC too (only if nothing will ever sync from SRC again).")
@handle_errors
def store_copy(src_url: str, dst_url: str, keep_source_credentials: bool) -> None:
    """Copy every row of the store at SRC_URL into an empty store at DST_URL.

    Carries FreshBooks' current refresh token across (syncing the new store from scratch
    would need a new `bridge auth`), with portal tokens, passphrases, cursors and the
    audit trail; then removes the rotating tokens from SRC, so a service still pointed at
    it cannot spend the token the new store holds. Stop `bridge run` first, then point
    [store] url at DST_URL.

    \b
    Example:
      bridge store copy sqlite:///clearhours.db postgresql://bridge@db:5432/clearhours
    """
    from bridge.storecopy import copy_store

    report = copy_store(src_url, dst_url, move_credentials=not keep_source_credentials)
    for name, n in report.rows.items():
        if n:
            click.echo(f"  {name}: {n} row(s)")
    click.echo(f"copied {report.total} row(s) into {dst_url.split('@')[-1]}")
    if report.moved_credentials:
        click.echo(f"moved {', '.join(report.moved_credentials)}: the source store no longer holds them. "
                   "Now set [store] url to the new store.")
