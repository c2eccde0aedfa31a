"""The `bridge` command line: a thin layer over the library, and the composition root.

This is the only module in `bridge/` that imports `connectors` and `publishers`. Every
command calls a library function; domain errors become one clean message and exit 1.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bridge.config import Config, load_config
from bridge.errors import BridgeError
from bridge.store import Store

DEFAULT_CONFIG = "bridge.toml"


class Env:
    """What every command needs: the config and, lazily, the store."""

    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.config.store.url)
            self._store.migrate()
        return self._store


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Domain errors read like advice on the CLI: one message, exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BridgeError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


pass_env = click.make_pass_decorator(Env)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c", "--config", "config_path", envvar="BRIDGE_CONFIG", default=DEFAULT_CONFIG, show_default=True,
    help="The TOML config file (env BRIDGE_CONFIG). Start from config/bridge.example.toml.",
)
@click.option("--log-format", type=click.Choice(["human", "json"]), default="human", show_default=True,
              help="Log lines for people, or JSON lines for log collectors.")
@click.option("-v", "--verbose", count=True, help="More log detail (-vv for debug).")
@click.version_option(package_name="clearhours", prog_name="bridge")
@click.pass_context
def cli(ctx: click.Context, config_path: str, log_format: str, verbose: int) -> None:
    """clearhours bridge: sync time trackers into one store and publish a redacted portal per client.

    \b
    Quick start (no credentials, no network):
      bridge demo
    Day to day:
      bridge sync          pull new and changed records from every source
      bridge publish       render and publish every client's portal
      bridge run           do both on a schedule, for ever
    """
    from bridge.logs import setup_logging

    setup_logging(log_format, verbose)
    ctx.obj = Env(config_path)


def main() -> None:
    cli(prog_name="bridge")


# Commands are added below, each a thin wrapper over a library function.


def _connector_factory(env: Env):  # type: ignore[no-untyped-def]
    from connectors import build_connector

    def make(source_cfg):  # type: ignore[no-untyped-def]
        return build_connector(source_cfg, tz=env.config.agency.zone, store=env.store)

    return make


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

    lock = None
    try:
        from bridge.locks import source_lock

        def lock(name: str):  # type: ignore[no-untyped-def]
            return source_lock(env.store, name, wait=wait)
    except ImportError:  # pragma: no cover - locks land with the scheduler
        pass
    progress = progress_for()
    cm = progress if hasattr(progress, "__enter__") else None
    if cm:
        with cm:
            reports = sync_all(env.config, env.store, _connector_factory(env), names=list(sources) or None,
                               full=full, reconcile=not no_reconcile, progress=progress, lock=lock)
    else:
        reports = sync_all(env.config, env.store, _connector_factory(env), names=list(sources) or None,
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
    """Make the cheapest authenticated call to each source: are the credentials right?"""
    failed = False
    make = _connector_factory(env)
    for s in env.config.sources:
        if sources and s.name not in sources:
            continue
        try:
            conn = make(s)
            try:
                conn.check()
            finally:
                conn.close()
            click.echo(f"{s.name}: OK")
        except BridgeError as exc:
            failed = True
            click.echo(f"{s.name}: FAILED - {exc}", err=True)
    if failed:
        sys.exit(1)
