"""Commands that pull data in: sync, quarantine, check, check-config."""

from __future__ import annotations

import sys
from typing import Any

import click

from bridge.cli import wiring
from bridge.cli.base import Env, cli, handle_errors, pass_env
from bridge.errors import BridgeError


def _print_reports(reports: list[Any], as_json: bool) -> None:
    import json as _json

    if as_json:
        click.echo(_json.dumps([r.as_dict() for r in reports], indent=2))
        return
    for r in reports:
        if r.status == "ok":
            click.echo(
                f"{r.source}: ok - {r.new} new, {r.updated} updated, {r.deleted} deleted, "
                f"{r.quarantined} quarantined, {r.requests} requests, {r.seconds:.1f} s"
            )
            for resource, why in getattr(r, "not_permitted", {}).items():
                # the token works but may not read this: skipped, the rest synced
                click.echo(f"{r.source}: SKIPPED {resource} - {why}", err=True)
        else:
            click.echo(f"{r.source}: {r.status.upper()} - {r.error}", err=True)
    quarantined = sum(r.quarantined for r in reports)
    if quarantined:
        click.echo(f"{quarantined} record(s) quarantined; `bridge quarantine` lists them with the reason.", err=True)


@cli.command()
@click.option("--source", "sources", multiple=True, help="Sync only this source (repeatable). Default: all.")
@click.option("--full", is_flag=True, help="Ignore cursors: fetch everything and check every id for deletions.")
@click.option("--no-reconcile", is_flag=True, help="Skip the deletion check this time.")
@click.option("--wait", is_flag=True, help="If another process is syncing a source, wait for it instead of skipping.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-source summary as JSON.")
@pass_env
@handle_errors
def sync(env: Env, sources: tuple[str, ...], full: bool, no_reconcile: bool, wait: bool, as_json: bool) -> None:
    """Pull new and changed records from each source into the store.

    Resumes from the last committed page if a previous run was killed. Exits 1 only
    when a source failed; a record that fails validation is quarantined and the sync
    goes on.

    \b
    Example:
      bridge sync --source harvest
    """
    from bridge.progress import progress_for
    from bridge.sync import sync_all

    from contextlib import nullcontext

    from bridge.locks import source_lock

    def lock(name: str):  # type: ignore[no-untyped-def]
        return source_lock(env.store, name, wait=wait)

    progress = progress_for()
    with progress if hasattr(progress, "__enter__") else nullcontext():
        reports = sync_all(env.config, env.store, wiring.connector_factory(env), names=list(sources) or None,
                           full=full, reconcile=not no_reconcile, progress=progress, lock=lock)
    _print_reports(reports, as_json)
    if any(r.status == "failed" for r in reports):
        sys.exit(1)


@cli.command()
@click.option("--source", help="Only this source.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
@handle_errors
def quarantine(env: Env, source: str | None, as_json: bool) -> None:
    """List records that failed validation, with the source, record, field and reason.

    A quarantined record is retried on every sync and leaves the list once the
    provider sends a valid version.
    """
    import json as _json

    rows = env.store.quarantined(source)
    if as_json:
        click.echo(_json.dumps([
            {"source": q.source, "resource": q.resource, "id": q.source_id, "field": q.field, "reason": q.reason,
             "first_seen_at": q.first_seen_at.isoformat() if q.first_seen_at else None,
             "last_seen_at": q.last_seen_at.isoformat() if q.last_seen_at else None}
            for q in rows], indent=2))
        return
    if not rows:
        click.echo("No quarantined records.")
        return
    for q in rows:
        click.echo(f"{q.source} {q.resource} id={q.source_id} field={q.field or '-'}: {q.reason}")
    click.echo(f"{len(rows)} quarantined record(s). Fix them at the provider; the next sync picks them up.")


@cli.command("check-config")
@pass_env
@handle_errors
def check_config(env: Env) -> None:
    """Validate the config file and each source's settings without touching the network."""
    from connectors import CONNECTORS

    cfg = env.config
    for s in cfg.sources:
        if s.kind not in CONNECTORS:
            raise BridgeError(f"{env.config_path}: source {s.name!r}: kind {s.kind!r} has no connector installed")
    click.echo(f"{env.config_path}: OK - {len(cfg.sources)} source(s), {len(cfg.clients)} client portal(s)")


@cli.command()
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@pass_env
@handle_errors
def check(env: Env, sources: tuple[str, ...]) -> None:
    """Check each source's credentials, say what the token may read, and find unknown client ids.

    Prints who the token belongs to, whether it sees rates, and each resource it may
    not list with the permission that resource needs (a sync skips those and syncs the
    rest). Then, for a source that configured clients name, lists its clients and reports
    every configured client id it does not know, by client (a wrong id would otherwise
    publish an empty portal). Exits 1 on a failed source or an unknown id.
    """
    from bridge.discovery import discover, unknown_ids
    from bridge.permissions import describe, source_access

    failed = False
    make = wiring.connector_factory(env)
    for s in env.config.sources:
        if sources and s.name not in sources:
            continue
        try:
            conn = make(s)
            try:
                access = source_access(conn)
                problems = []
                if any(s.name in c.sources for c in env.config.clients):
                    known = [c.id for c in discover(conn, s, env.config.agency.zone)]
                    problems = unknown_ids(env.config, s.name, known)
            finally:
                conn.close()
            if problems:
                failed = True
                for line in problems:
                    click.echo(f"{s.name}: UNKNOWN ID - {line}", err=True)
            else:
                click.echo(f"{s.name}: OK")
            for line in describe(access):
                click.echo(f"  {line}")
        except BridgeError as exc:
            failed = True
            click.echo(f"{s.name}: FAILED - {exc}", err=True)
    if failed:
        sys.exit(1)
