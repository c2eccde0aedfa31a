"""`bridge verify`: the store's figures against each tracker's own reports."""

from __future__ import annotations

import sys

import click

from bridge.cli import wiring
from bridge.cli.base import Env, cli, handle_errors, pass_env


def run_verify(env: Env, clients: tuple[str, ...] = ()) -> list:  # type: ignore[type-arg]
    """The library call behind the command (also the nightly hook of `bridge run`)."""
    from bridge.models import utcnow
    from bridge.verify import verify

    return verify(env.store, env.config, wiring.tracker_reports(env), now=utcnow(), clients=list(clients) or None)


@cli.command(name="verify")
@click.option("--client", "clients", multiple=True, help="Only this client (repeatable); default: every client.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
@handle_errors
def verify_command(env: Env, clients: tuple[str, ...], as_json: bool) -> None:
    """Check the bridge's figures against each tracker's own reports.

    Asks every source for the aggregates it computes itself (Harvest's budget, time and
    uninvoiced reports; Productive's budget totals; FreshBooks' logged time per project
    and invoice totals), works out the same figures from the store, and prints every
    difference with its likely cause (a sync that is behind, a deletion not reconciled
    yet, a rate the bridge does not have, a quarantined record). A running timer the
    tracker already counts is a note, not a difference.

    Exits 1 when any figure differs by more than rounding (0.01) or a tracker's
    reports could not be read. The outcome is kept, and `bridge status` shows it.

    \b
    Examples:
      bridge verify
      bridge verify --client acme --json
    """
    from bridge.verify import as_json as to_json
    from bridge.verify import report_lines

    results = run_verify(env, clients)
    if as_json:
        click.echo(to_json(results))
    else:
        for line in report_lines(results):
            click.echo(line)
    if not all(r.ok for r in results):
        sys.exit(1)
