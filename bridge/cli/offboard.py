"""Offboarding: portals, retire."""

from __future__ import annotations

import json
import sys

import click

from bridge.cli import wiring
from bridge.cli.base import Env, cli, handle_errors, pass_env


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
@handle_errors
def portals(env: Env, as_json: bool) -> None:
    """List every portal on the publish target, orphans included.

    Reads the target itself (the folder or the bucket prefix), so a portal of a client
    removed from or renamed in the config shows up as ORPHAN, and a folder no link in
    this store names as UNKNOWN. Each is named by client key and by a fingerprint of its
    token (never the token: on file:// and CloudFront targets it opens the portal).
    Exits 1 when there is an orphan or an unknown portal; `bridge retire --orphans`
    removes them.

    \b
    Example:
      bridge portals
      bridge retire --orphans
    """
    from bridge.offboarding import list_portals

    entries = list_portals(env.store, env.config, wiring.target(env))
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in entries], indent=2))
    else:
        for e in entries:
            click.echo(e.line())
        if not entries:
            click.echo("No portal on the target.")
    stray = [e for e in entries if e.state != "live"]
    if stray:
        if not as_json:
            click.echo(f"{len(stray)} portal(s) not in the config: `bridge retire KEY` or `bridge retire --orphans` "
                       "deletes them.", err=True)
        sys.exit(1)


@cli.command()
@click.argument("key", required=False)
@click.option("--orphans", is_flag=True, help="Retire every portal whose client left the config.")
@click.option("--unknown", "include_unknown", is_flag=True,
              help="With --orphans: also folders no link in this store names (check `bridge portals` first).")
@pass_env
@handle_errors
def retire(env: Env, key: str | None, orphans: bool, include_unknown: bool) -> None:
    """Take down the portal of a client that left: delete its objects and kill its link.

    KEY is a client key (or a fingerprint) from `bridge portals`. The old link is then
    checked dead, the stored link and passphrase forgotten, and the retirement recorded
    in the audit trail. A client still in the config is refused: remove its block first,
    as the next publish would bring it back.

    \b
    Example:
      bridge retire heron
      bridge retire --orphans
    """
    from bridge.offboarding import retire as retire_one
    from bridge.offboarding import retire_orphans
    from bridge.publishing import probe_url

    if bool(key) == orphans:
        raise click.UsageError("give either KEY or --orphans")
    if include_unknown and not orphans:
        raise click.UsageError("--unknown goes with --orphans")
    target = wiring.target(env)
    done = retire_orphans(env.store, env.config, target, probe=probe_url, include_unknown=include_unknown) if orphans \
        else [retire_one(env.store, env.config, target, key or "", probe=probe_url)]
    for r in done:
        dead = "" if r.old_link_status is None else f", old link now answers {r.old_link_status}"
        click.echo(f"{r.client_key or r.fingerprint}: retired; {r.removed} object(s) deleted{dead}.")
    if not done:
        click.echo("No orphaned portal.")
