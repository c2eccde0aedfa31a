"""Publishing: publish, links, revoke, invite, preview."""

from __future__ import annotations

import sys
from typing import Any

import click

from bridge.cli import wiring
from bridge.cli.base import Env, cli, handle_errors, pass_env


def expiry_text(expires_at: Any, now: Any) -> str:
    if expires_at is None:
        return "never expires"
    left = int((expires_at - now).total_seconds())
    if left <= 0:
        return f"EXPIRED {expires_at:%Y-%m-%d %H:%M} UTC"
    days, rest = divmod(left, 86400)
    return f"expires {expires_at:%Y-%m-%d %H:%M} UTC (in {days}d {rest // 3600}h)" if days else \
        f"expires {expires_at:%Y-%m-%d %H:%M} UTC (in {rest // 3600}h {rest % 3600 // 60}m)"


def held_back_text(outcome: Any) -> str:
    """'3 descriptions withheld: run `bridge review acme`' (and how many were redacted)."""
    parts = []
    if outcome.withheld:
        parts.append(f"{outcome.withheld} description{'s' if outcome.withheld != 1 else ''} withheld")
    if outcome.redacted:
        parts.append(f"{outcome.redacted} redacted")
    if not parts:
        return ""
    return f"{', '.join(parts)}: run `bridge review {outcome.client_key}`"


def _print_publish(env: Env, report: Any) -> None:
    from bridge.models import utcnow

    now = utcnow()
    for o in report.outcomes:
        if o.ok:
            click.echo(f"{o.client_key}: {o.url}")
            click.echo(f"  {expiry_text(o.expires_at, now)}; {o.uploaded} uploaded, {o.deleted} deleted, "
                       f"{o.unchanged} unchanged")
            note = held_back_text(o)
            if note:
                click.echo(f"  {note}")
        else:
            click.echo(f"{o.client_key}: FAILED - {o.error}", err=True)


@cli.command()
@click.option("--client", "clients", multiple=True, help="Only this client (repeatable). Default: every client.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write into DIR/<token>/ on this machine instead of the configured target.")
@pass_env
@handle_errors
def publish(env: Env, clients: tuple[str, ...], out_dir: str | None) -> None:
    """Render and publish each client's portal, then print its link.

    Only changed files are uploaded (content hashes), exports before the page, so a
    reader never sees half a portal. Links stay the same until they are due for
    renewal (`publish.refresh_before`); `bridge links --refresh` renews them now.
    With --out, portals go to a local folder and the stored links are left alone.
    A client none of whose configured ids matches a synced client is refused (its
    portal would be empty; `bridge discover` lists the real ids).
    Exits 1 if any client failed; the others are still published.

    \b
    Example:
      bridge publish --client acme
      bridge publish --out ./site-check
    """
    from bridge.publishing import publish_all

    report = publish_all(env.store, env.config, wiring.target(env, out_dir), wiring.renderer(),
                         clients=list(clients) or None, record=out_dir is None, protect=wiring.protector(env))
    _print_publish(env, report)
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.option("--client", "clients", multiple=True, help="Only this client (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--refresh", is_flag=True, help="Sign new links now (re-renders pages; exports are not re-uploaded).")
@click.option("--expire-soon", "expire_soon", metavar="DURATION",
              help="Only links that expire within DURATION, e.g. 2d or 12h.")
@pass_env
@handle_errors
def links(env: Env, clients: tuple[str, ...], as_json: bool, refresh: bool, expire_soon: str | None) -> None:
    """Print each client's current portal link and when it expires.

    Signed links are bearer secrets: anyone holding one can open that portal until it
    expires. Send them with `bridge invite`, not in shared channels.

    \b
    Example:
      bridge links --expire-soon 2d
      bridge links --refresh --client acme
    """
    import json as _json

    from bridge.config import parse_duration
    from bridge.models import utcnow
    from bridge.publishing import list_links, publish_all

    within = None
    if expire_soon:
        try:
            within = parse_duration(expire_soon)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expire-soon") from None
    failed = False
    if refresh:
        report = publish_all(env.store, env.config, wiring.target(env), wiring.renderer(), clients=list(clients) or None,
                             refresh=True, protect=wiring.protector(env))
        for o in report.failed:
            failed = True
            click.echo(f"{o.client_key}: FAILED - {o.error}", err=True)
    now = utcnow()
    infos = list_links(env.store, env.config, clients=list(clients) or None, expire_within=within, now=now)
    if as_json:
        click.echo(_json.dumps([
            {"client": i.client_key, "url": i.url, "expires_at": i.expires_at.isoformat() if i.expires_at else None,
             "published_at": i.published_at.isoformat() if i.published_at else None,
             "expires_in_seconds": i.expires_in_seconds} for i in infos], indent=2))
    else:
        for i in infos:
            if i.url is None:
                click.echo(f"{i.client_key}: not published yet (`bridge publish --client {i.client_key}`)")
            else:
                click.echo(f"{i.client_key}: {expiry_text(i.expires_at, now)}\n  {i.url}")
        if not infos and within is not None:
            click.echo(f"No link expires within {expire_soon}.")
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("client")
@pass_env
@handle_errors
def revoke(env: Env, client: str) -> None:
    """Revoke every link of CLIENT: move its portal to a new token and delete the old one.

    Publishes under a new random token, deletes every object under the old token,
    checks with an HTTP request that the old link is dead, and prints the new link.
    Send the new link with `bridge invite`.

    \b
    Example:
      bridge revoke acme
    """
    from bridge.models import utcnow
    from bridge.publishing import revoke as revoke_client

    res = revoke_client(env.store, env.config, client, wiring.target(env), wiring.renderer(), protect=wiring.protector(env))
    status = "no earlier link" if res.old_link_status is None else f"old link now answers {res.old_link_status}"
    click.echo(f"{client}: revoked; {res.removed} old object(s) deleted, {status}.")
    click.echo(f"New link ({expiry_text(res.expires_at, utcnow())}):\n  {res.url}")


@cli.command()
@click.argument("client")
@click.option("--to", "to", required=True, help="Recipient; must be one of the client's `contacts`.")
@click.option("--dry-run", is_flag=True, help="Print the e-mail instead of sending it.")
@click.option("--allow-local", is_flag=True, help="Send a file:// link anyway (the client shares this machine).")
@pass_env
@handle_errors
def invite(env: Env, client: str, to: str, dry_run: bool, allow_local: bool) -> None:
    """E-mail CLIENT's portal link to one of its contacts: link, expiry, what it shows, whom to ask.

    Refuses addresses that are not in the client's `contacts`, and file:// links (a
    client cannot open a file on this machine) unless --allow-local. A passphrase
    portal's mail says the passphrase comes separately; it never carries it. SMTP
    settings come from [smtp] (`bridge mail --test` checks them); the login comes from
    the environment variables named there.

    \b
    Example:
      bridge invite acme --to ann@acme.example --dry-run
    """
    from bridge.publishing import invite as invite_contact
    from publishers import mail

    smtp = env.config.smtp
    inv, message = invite_contact(env.store, env.config, client, to, compose=mail.invitation,
                                  send=lambda m: mail.send_message(smtp, m), dry_run=dry_run,
                                  allow_local=allow_local)
    if dry_run:
        click.echo(f"To: {message['To']}\nSubject: {message['Subject']}\n")
        click.echo(message.get_body(("plain",)).get_content())
        click.echo(f"(dry run: nothing sent to {inv.to})", err=True)
        if inv.url.startswith("file://") and not allow_local:
            click.echo("warning: this link is a file on this machine; the client cannot open it, so sending it "
                       "is refused without --allow-local", err=True)
    else:
        click.echo(f"{client}: invitation sent to {inv.to}")


@cli.command()
@click.argument("client")
@pass_env
@handle_errors
def preview(env: Env, client: str) -> None:
    """Render CLIENT's portal into a temporary folder and print the page's path.

    Nothing is uploaded and no link changes; open the printed file in a browser.

    \b
    Example:
      bridge preview acme
    """
    import tempfile

    from bridge.publishing import publish_client

    folder = tempfile.mkdtemp(prefix="bridge-preview-")
    outcome = publish_client(env.store, env.config, env.config.client(client), wiring.target(env, folder), wiring.renderer(),
                             record=False, protect=wiring.protector(env))
    click.echo(outcome.url.removeprefix("file://") if outcome.url else folder)
