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


@cli.command()
@click.option("--port", type=int, default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated agency (same seed, same data).")
@click.option("--entries", type=int, default=1500, show_default=True, help="How many time entries to generate.")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None, help="The agency's 'today' (default: the real date).")
@click.option("--no-rate-limits", is_flag=True, help="Do not simulate the providers' rate limits (benchmarks).")
def sandbox(port: int, seed: int, entries: int, today: Any, no_rate_limits: bool) -> None:
    """Serve Harvest (and every other provider the sandbox has) locally, from a generated agency.

    Prints each provider's base URL and the demo credentials, then serves until Ctrl-C.
    The admin API (edit data, inject faults, read counters) is under /_sandbox/.

    \b
    Example:
      bridge sandbox --port 8765 --entries 200000 --no-rate-limits
    """
    from connectors.sandbox import describe, start_sandbox

    server = start_sandbox(seed=seed, entries=entries, port=port, rate_limits=not no_rate_limits,
                           today=today.date() if today else None)
    for line in describe(server):
        click.echo(line)
    click.echo("Press Ctrl-C to stop.")
    server.wait()


# --- scheduled operation: run, status, alerts ---------------------------------------------


def _alert_mailer(env: Env) -> Callable[[list[str], str, str, str], None] | None:
    if not env.config.alerts.email:
        return None
    from publishers.mail import send_mail

    smtp = env.config.smtp

    def mail(to: list[str], subject: str, text: str, html: str) -> None:
        send_mail(smtp, to, subject, text, html)

    return mail


def _scheduled_publisher(env: Env) -> Callable[[set[str]], None]:
    from bridge.publishing import publish_all
    from publishers import publisher_for
    from publishers.render import render_portal

    target = publisher_for(env.config.publish)

    def render(view: Any, link: Any, token: str = "") -> Any:
        # publishing scopes `link` to the client's own token, so the token argument
        # render_portal takes is only passed through to it
        return render_portal(view, link, token)

    def publish(keys: set[str]) -> None:
        # publish_all logs and audits each failed client; the others are still published
        publish_all(env.store, env.config, target, render, clients=sorted(keys))

    return publish


def _run_jobs(env: Env, *, publish: bool) -> Any:
    from bridge.alerts import channels_configured, run_alerts
    from bridge.locks import source_lock
    from bridge.scheduler import Jobs
    from bridge.sync import sync_all

    factory = _connector_factory(env)
    log = logging.getLogger("bridge.run")

    def sync(source: str, full: bool, stop: Any) -> Any:
        [report] = sync_all(env.config, env.store, factory, names=[source], full=full,
                            lock=lambda name: source_lock(env.store, name), stop=stop)
        log.info("%s: %s%s - %d new, %d updated, %d deleted, %d requests, %.1f s", source, report.status,
                 " (full)" if full else "", report.new, report.updated, report.deleted, report.requests, report.seconds)
        return report

    def alerts(keys: set[str]) -> None:
        if channels_configured(env.config):
            run_alerts(env.store, env.config, mail=_alert_mailer(env), clients=keys)

    return Jobs(sync=sync, publish=_scheduled_publisher(env) if publish else None, alerts=alerts)


@cli.command()
@click.option("--no-publish", is_flag=True, help="Only sync; do not re-publish portals or send alerts.")
@pass_env
@handle_errors
def run(env: Env, no_publish: bool) -> None:
    """Sync every source on its schedule and re-publish the clients whose data changed, until stopped.

    Each source syncs on its `every` interval (default 5m) or `cron` expression (in the
    agency's time zone), at most one sync per source across processes; every night a
    full pass finds records deleted at the provider. Signed links are re-issued before
    they expire, and budget alerts go out as thresholds are crossed. The schedule is kept
    in the store's database, so a restart neither repeats nor loses a run. SIGTERM or
    Ctrl-C stops cleanly: the page being written is committed, then the process exits 0.

    \b
    Example:
      bridge run -v
    """
    from bridge.scheduler import build_scheduler, serve

    path = str(Path(env.config_path).resolve())
    env.config  # fail on a bad config before anything starts
    jobs = _run_jobs(env, publish=not no_publish)
    scheduler = build_scheduler(env.config, env.store, jobs, config_path=path, publish_on_start=not no_publish)
    click.echo(f"bridge run: {len(env.config.sources)} source(s) scheduled, {len(env.config.clients)} portal(s); "
               "Ctrl-C or SIGTERM stops.", err=True)
    sys.exit(serve(scheduler, jobs))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
@handle_errors
def status(env: Env, as_json: bool) -> None:
    """Show each source's last sync, error, next run and records, and each portal's freshness.

    Exits 1 when a source has not synced successfully within `stale_after` (default
    1h), so it doubles as a health check for a container or a monitor.

    \b
    Example:
      bridge status --json
    """
    from bridge.models import utcnow
    from bridge.status import collect_status, print_rich, status_json, status_lines

    st = collect_status(env.store, env.config, utcnow())
    if as_json:
        click.echo(status_json(st))
    elif sys.stdout.isatty():
        from rich.console import Console

        print_rich(st, Console())
    else:
        for line in status_lines(st):
            click.echo(line)
    if not st.healthy:
        sys.exit(1)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Print the alerts that would be sent now; send and record nothing.")
@click.option("--client", "clients", multiple=True, help="Only this client (repeatable).")
@pass_env
@handle_errors
def alerts(env: Env, dry_run: bool, clients: tuple[str, ...]) -> None:
    """Send budget alerts for thresholds crossed since the last alert (`bridge run` does this itself).

    One alert per crossing of a client's thresholds (default 75/90/100%), to the agency's
    e-mail, the webhook and, with `alert_client = true`, the client's contacts. A crossing
    is never alerted twice; a raised budget or a new month (monthly budgets) re-arms it.
    Exits 1 if an alert could not be delivered on any channel.

    \b
    Example:
      bridge alerts --dry-run
    """
    from bridge.alerts import evaluate_alerts, run_alerts
    from bridge.models import utcnow

    for key in clients:
        env.config.client(key)
    chosen = list(clients) or None
    if dry_run:
        found = evaluate_alerts(env.store, env.config, utcnow(), clients=chosen)
        if not found:
            click.echo("No budget threshold newly crossed.")
        for a in found:
            to = list(a.agency_to) + (["webhook"] if env.config.alerts.webhook_url_env else [])
            click.echo(f"To: {', '.join(to) or '(no channel configured)'}")
            if a.client_to:
                click.echo(f"Client copy to: {', '.join(a.client_to)}")
            click.echo(f"Subject: {a.subject()}")
            click.echo(a.text())
            click.echo("")
        return
    results = run_alerts(env.store, env.config, mail=_alert_mailer(env), clients=chosen)
    if not results:
        click.echo("No budget threshold newly crossed.")
    for r in results:
        line = f"{r.alert.client_key} / {r.alert.project_name}: {r.alert.threshold}%"
        if r.recorded:
            click.echo(f"{line} - sent via {', '.join(r.delivered)}")
        for err in r.errors:
            click.echo(f"{line} - {err}", err=True)
    if any(not r.recorded for r in results):
        sys.exit(1)
