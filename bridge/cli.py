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

    from contextlib import nullcontext

    from bridge.locks import source_lock

    def lock(name: str):  # type: ignore[no-untyped-def]
        return source_lock(env.store, name, wait=wait)

    progress = progress_for()
    with progress if hasattr(progress, "__enter__") else nullcontext():
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

    # the same target and renderer as `bridge publish` (helpers below)
    target, render = _target(env), _renderer()

    def publish(keys: set[str]) -> None:
        # publish_all logs and audits each failed client; the others are still published
        publish_all(env.store, env.config, target, render, clients=sorted(keys), protect=_protector(env))

    return publish


def _run_jobs(env: Env, *, publish: bool) -> Any:
    from bridge.alerts import channels_configured, run_alerts
    from bridge.locks import source_lock
    from bridge.scheduler import Jobs
    from bridge.sync import sync_all

    factory = _connector_factory(env)
    log = logging.getLogger("bridge.run")

    def sync(source: str, full: bool, stop: Any) -> Any:
        # between nightly full passes, deletions are checked when `reconcile_every` is due,
        # so an idle cycle costs one request per resource
        [report] = sync_all(env.config, env.store, factory, names=[source], full=full,
                            reconcile=True if full else "due",
                            lock=lambda name: source_lock(env.store, name), stop=stop)
        log.info("%s: %s%s - %d new, %d updated, %d deleted, %d requests, %.1f s", source, report.status,
                 " (full)" if full else "", report.new, report.updated, report.deleted, report.requests, report.seconds)
        return report

    def alerts(keys: set[str]) -> None:
        if channels_configured(env.config):
            run_alerts(env.store, env.config, mail=_alert_mailer(env), clients=keys)

    def reinvite(keys: set[str]) -> None:
        from bridge.publishing import reinvite as send_again
        from publishers import mail

        send_again(env.store, env.config, keys, compose=mail.invitation, send=lambda m: mail.send_message(env.config.smtp, m))

    return Jobs(sync=sync, publish=_scheduled_publisher(env) if publish else None, alerts=alerts,
                reinvite=reinvite if publish else None)


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


def client_totals(env: Env) -> list[dict[str, Any]]:
    """Per portal client: hours to date, this week, billable share, open invoices - from the store."""
    import datetime as dt

    import sqlalchemy as sa

    from bridge.models import Invoice, TimeEntry

    cfg = env.config
    zone = cfg.agency.zone
    today = dt.datetime.now(zone).date()
    week_start = today - dt.timedelta(days=(today.weekday() - cfg.agency.week_start_index) % 7)
    te, inv = TimeEntry.__table__, Invoice.__table__
    out = []
    with env.store.engine.connect() as conn:
        for client in cfg.clients:
            cond = sa.or_(*[
                sa.and_(te.c.source == src, te.c.client_source_id.in_(ids)) for src, ids in client.sources.items()
            ]) if client.sources else sa.false()
            live = sa.and_(cond, te.c.is_deleted.is_(False))
            total, billable, week = conn.execute(sa.select(
                sa.func.coalesce(sa.func.sum(te.c.seconds), 0),
                sa.func.coalesce(sa.func.sum(sa.case((te.c.is_billable, te.c.seconds), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(sa.case((te.c.spent_date >= week_start, te.c.seconds), else_=0)), 0),
            ).where(live)).one()
            icond = sa.or_(*[
                sa.and_(inv.c.source == src, inv.c.client_source_id.in_(ids)) for src, ids in client.sources.items()
            ]) if client.sources else sa.false()
            open_count = conn.execute(sa.select(sa.func.count()).where(
                icond, inv.c.is_deleted.is_(False), inv.c.status.in_(["open", "partial", "overdue"]))).scalar_one()
            out.append({
                "client": client.name, "sources": ", ".join(client.sources), "hours": round(total / 3600, 2),
                "this_week": round(week / 3600, 2), "billable_pct": round(100 * billable / total) if total else 0,
                "open_invoices": open_count,
            })
    return out


@cli.command()
@click.option("--out", "out_dir", default="demo-site", show_default=True, type=click.Path(file_okay=False),
              help="Where the demo config, store and portals go.")
@click.option("--entries", default=1500, show_default=True, help="Time entries in the generated agency.")
@click.option("--seed", default=1, show_default=True, help="Seed of the generated agency.")
@click.pass_context
@handle_errors
def demo(ctx: click.Context, out_dir: str, entries: int, seed: int) -> None:
    """Run the whole pipeline on a generated agency: no credentials, no network.

    Starts the provider sandbox on 127.0.0.1 (Harvest, FreshBooks and Productive.io
    speaking their real APIs), writes a demo config, syncs every source into a local
    SQLite store, prints per-client totals from the store, and renders each client's
    portal into OUT/<token>/index.html.

    \b
    Example:
      bridge demo && open demo-site/*/index.html
    """
    from connectors.sandbox import start_sandbox
    from connectors.sandbox.demo import demo_config, to_toml

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous_demo(out)
    click.echo("Starting the provider sandbox on 127.0.0.1 …")
    box = start_sandbox(seed=seed, entries=entries, port=0, rate_limits=True)
    try:
        data, secrets_env = demo_config(box, store_url=f"sqlite:///{out / 'clearhours.db'}", target=f"file://{out}")
        cfg_path = out / "bridge.toml"
        cfg_path.write_text(
            f"{DEMO_HEADER}: the sandbox's URLs change on every run.\n" + to_toml(data), encoding="utf-8"
        )
        os.environ.update(secrets_env)
        env = Env(str(cfg_path))
        click.echo(f"Config: {cfg_path}\nStore:  {env.config.store.url}\n")
        ctx.obj = env
        ctx.invoke(sync)
    except SystemExit as exc:
        if exc.code:
            raise click.ClickException("the demo sync failed; see the errors above") from None
    finally:
        box.stop()
    rows = client_totals(env)
    click.echo("\nPer-client totals from the store:")
    width = max(len(r["client"]) for r in rows) if rows else 10
    click.echo(f"  {'client'.ljust(width)}  {'source':<11} {'hours':>9} {'this week':>10} {'billable':>9} {'open inv.':>9}")
    for r in rows:
        click.echo(f"  {r['client'].ljust(width)}  {r['sources']:<11} {r['hours']:>9.2f} {r['this_week']:>10.2f} "
                   f"{r['billable_pct']:>8}% {r['open_invoices']:>9}")
    _demo_publish(env, out)


DEMO_HEADER = "# Written by `bridge demo`"


def _clear_previous_demo(out: Path) -> None:
    """A demo run starts clean: its store, and the portal folders an earlier demo published
    (a fresh store issues new tokens, so old folders would pile up). Only a folder the demo
    itself wrote is touched: one holding its config, and in it only publish folders."""
    import shutil

    cfg = out / "bridge.toml"
    if cfg.exists() and not cfg.read_text(encoding="utf-8").startswith(DEMO_HEADER):
        raise BridgeError(f"{out} holds a bridge.toml that `bridge demo` did not write; choose another --out")
    for stale in ("clearhours.db", "clearhours.db-wal", "clearhours.db-shm"):
        (out / stale).unlink(missing_ok=True)
    if cfg.exists():
        for folder in out.iterdir():
            if folder.is_dir() and (folder / ".manifest.json").exists():
                shutil.rmtree(folder)


def _demo_publish(env: Env, out: Path) -> None:
    """Render every demo client's portal into OUT/<token>/ and print the paths."""
    from bridge.publishing import publish_all

    report = publish_all(env.store, env.config, _target(env), _renderer(), protect=_protector(env))
    click.echo("\nPortals:")
    for o in report.outcomes:
        if o.ok:
            click.echo(f"  {env.config.client(o.client_key).name}: {o.url}")
        else:
            click.echo(f"  {o.client_key}: FAILED - {o.error}", err=True)


# --- publishing: publish, links, revoke, invite, preview ----------------------------------


def _renderer() -> Any:
    from publishers.render import render_portal

    return render_portal


def _target(env: Env, out_dir: str | None = None) -> Any:
    from publishers import publisher_for
    from publishers.local import LocalPublisher

    return LocalPublisher(out_dir) if out_dir else publisher_for(env.config.publish)


def _protector(env: Env) -> Any:
    """The passphrase hook (bridge.passphrase), applied after the leak guard, before upload."""
    try:
        from bridge.passphrase import apply_protection
        from publishers.protect import protect
    except ImportError:  # pragma: no cover - lands with the passphrase issue
        return None
    return lambda client, files: apply_protection(env.store, client, files, protect)


def _expiry_text(expires_at: Any, now: Any) -> str:
    if expires_at is None:
        return "never expires"
    left = int((expires_at - now).total_seconds())
    if left <= 0:
        return f"EXPIRED {expires_at:%Y-%m-%d %H:%M} UTC"
    days, rest = divmod(left, 86400)
    return f"expires {expires_at:%Y-%m-%d %H:%M} UTC (in {days}d {rest // 3600}h)" if days else \
        f"expires {expires_at:%Y-%m-%d %H:%M} UTC (in {rest // 3600}h {rest % 3600 // 60}m)"


def _print_publish(env: Env, report: Any) -> None:
    from bridge.models import utcnow

    now = utcnow()
    for o in report.outcomes:
        if o.ok:
            click.echo(f"{o.client_key}: {o.url}")
            click.echo(f"  {_expiry_text(o.expires_at, now)}; {o.uploaded} uploaded, {o.deleted} deleted, "
                       f"{o.unchanged} unchanged")
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
    Exits 1 if any client failed; the others are still published.

    \b
    Example:
      bridge publish --client acme
      bridge publish --out ./site-check
    """
    from bridge.publishing import publish_all

    report = publish_all(env.store, env.config, _target(env, out_dir), _renderer(), clients=list(clients) or None,
                         record=out_dir is None, protect=_protector(env))
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
        report = publish_all(env.store, env.config, _target(env), _renderer(), clients=list(clients) or None,
                             refresh=True, protect=_protector(env))
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
                click.echo(f"{i.client_key}: {_expiry_text(i.expires_at, now)}\n  {i.url}")
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

    res = revoke_client(env.store, env.config, client, _target(env), _renderer(), protect=_protector(env))
    status = "no earlier link" if res.old_link_status is None else f"old link now answers {res.old_link_status}"
    click.echo(f"{client}: revoked; {res.removed} old object(s) deleted, {status}.")
    click.echo(f"New link ({_expiry_text(res.expires_at, utcnow())}):\n  {res.url}")


@cli.command()
@click.argument("client")
@click.option("--to", "to", required=True, help="Recipient; must be one of the client's `contacts`.")
@click.option("--dry-run", is_flag=True, help="Print the e-mail instead of sending it.")
@pass_env
@handle_errors
def invite(env: Env, client: str, to: str, dry_run: bool) -> None:
    """E-mail CLIENT's portal link to one of its contacts: link, expiry, what it shows, whom to ask.

    Refuses addresses that are not in the client's `contacts`. SMTP settings come from
    [smtp]; the login comes from the environment variables named there.

    \b
    Example:
      bridge invite acme --to ann@acme.example --dry-run
    """
    from bridge.publishing import invite as invite_contact
    from publishers import mail

    smtp = env.config.smtp
    inv, message = invite_contact(env.store, env.config, client, to, compose=mail.invitation,
                                  send=lambda m: mail.send_message(smtp, m), dry_run=dry_run)
    if dry_run:
        click.echo(f"To: {message['To']}\nSubject: {message['Subject']}\n")
        click.echo(message.get_body(("plain",)).get_content())
        click.echo(f"(dry run: nothing sent to {inv.to})", err=True)
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
    outcome = publish_client(env.store, env.config, env.config.client(client), _target(env, folder), _renderer(),
                             record=False, protect=_protector(env))
    click.echo(outcome.url.removeprefix("file://") if outcome.url else folder)


# --- portal access: passphrases, IP policy, audit (bridge/passphrase.py, ip_policy.py, audit.py) ---


@cli.command()
@click.argument("client")
@click.option("--rotate", is_flag=True, help="Generate a new passphrase, store it and print it once.")
@click.option("--show", is_flag=True, help="Print the stored passphrase (the reading is audited).")
@pass_env
@handle_errors
def passphrase(env: Env, client: str, rotate: bool, show: bool) -> None:
    """Create, rotate or show CLIENT's portal passphrase.

    A client with `passphrase = true` gets a portal encrypted under it; the page asks for
    it and decrypts in the browser. Send the passphrase by another channel than the link
    (a phone call, a different message). Rotating does not change the page already
    published: publish again for the new passphrase to take effect. Without options,
    tells whether a passphrase is set.

    \b
    Example:
      bridge passphrase acme --rotate
      bridge publish --client acme
    """
    from bridge.audit import events
    from bridge.passphrase import get_passphrase, rotate_passphrase, show_passphrase

    cfg = env.config.client(client)
    if rotate:
        value = rotate_passphrase(env.store, cfg.key)
        click.echo(value)
        click.echo(f"{cfg.key}: new passphrase stored. Deliver it separately from the link, then publish "
                   f"(`bridge publish --client {cfg.key}`) for it to take effect.", err=True)
        if not cfg.passphrase:
            click.echo(f"{cfg.key}: note: passphrase = true is not set for this client, so its portal "
                       "is not encrypted yet.", err=True)
    elif show:
        value = show_passphrase(env.store, cfg.key)
        if value is None:
            raise click.ClickException(f"{cfg.key} has no passphrase; create one with --rotate")
        click.echo(value)
    else:
        rotated = [e for e in events(env.store, client_key=cfg.key) if e.action == "passphrase_rotated"]
        state = "set" if get_passphrase(env.store, cfg.key) else "not set"
        when = f", last rotated {rotated[-1].at:%Y-%m-%d %H:%M} UTC" if rotated else ""
        click.echo(f"{cfg.key}: passphrase {state}{when}; protection is {'on' if cfg.passphrase else 'off'} in config")


def _s3_client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url)


@cli.command()
@click.option("--print", "print_", is_flag=True, help="Print our statements as a policy document (the default).")
@click.option("--apply", "apply_", is_flag=True, help="Merge them into the bucket's policy, keeping other statements.")
@pass_env
@handle_errors
def policy(env: Env, print_: bool, apply_: bool) -> None:
    """Show or apply the bucket policy that enforces clients' `allow_ips` on S3 links.

    Each client with allow_ips gets one Deny statement on its own folder only: presigned
    links from other addresses are refused. Apply it again after a client's token
    changes (first publish, `bridge revoke`) or its allow_ips change. Statements of other
    tools in the policy are kept; ours are replaced by Sid.

    \b
    Example:
      bridge policy --print
      bridge policy --apply
    """
    import json as _json

    from bridge.ip_policy import apply_policy, bucket_policy, current_tokens
    from publishers.s3 import parse_target

    pub = env.config.publish
    bucket, prefix = parse_target(pub.target)
    tokens = current_tokens(env.store)
    for c in env.config.clients:
        if c.allow_ips and c.key not in tokens:
            click.echo(f"{c.key}: has allow_ips but no token yet; publish it, then apply the policy", err=True)
    doc = bucket_policy(env.config, bucket, prefix, tokens)
    if pub.cloudfront_domain and doc["Statement"]:
        click.echo("note: links go through CloudFront, whose signed URLs carry the IP condition themselves; "
                   "this policy guards direct S3 links.", err=True)
    if not apply_:
        click.echo(_json.dumps(doc, indent=2))
        return
    changed = apply_policy(_s3_client(pub.region, pub.endpoint_url), bucket, doc)
    click.echo(f"s3://{bucket}: policy {'updated' if changed else 'already up to date'} "
               f"({len(doc['Statement'])} client statement(s))")


@cli.command()
@click.option("--client", "client", help="Only this client's events.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]),
              help="Only events at or after this date (agency time zone).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one event per line.")
@click.option("--ingest", is_flag=True, help="First read new access-log objects from [audit] log_bucket.")
@pass_env
@handle_errors
def audit(env: Env, client: str | None, since: Any, as_json: bool, ingest: bool) -> None:
    """List the audit trail: portal requests from the access logs and the bridge's own actions.

    Portal requests (action `access`) come from S3 server access logs or CloudFront
    standard logs, read with --ingest from the bucket and prefix in [audit]. AWS delivers
    those logs with a delay of minutes to hours, and only if logging is switched on.
    `link_valid` is false for refused requests (expired, revoked or outside allow_ips).

    \b
    Example:
      bridge audit --ingest --client acme --since 2025-03-01
    """
    import json as _json

    from bridge import audit as trail

    if client:
        env.config.client(client)
    if ingest:
        acfg = env.config.audit
        if not acfg.log_bucket:
            raise click.ClickException("--ingest needs [audit] log_bucket (and log_prefix, format) in the config")
        stats = trail.ingest(env.store, _s3_client(acfg.region, acfg.endpoint_url), acfg.log_bucket,
                             acfg.log_prefix, acfg.format)
        click.echo(f"ingested {stats.log_objects} log object(s) ({stats.skipped_objects} already read): "
                   f"{stats.events} request(s), {stats.malformed} malformed line(s) skipped, "
                   f"{stats.unattributed} not for a portal", err=True)
    start = None
    if since is not None:
        import datetime as _dt

        start = since.replace(tzinfo=env.config.agency.zone).astimezone(_dt.timezone.utc)
    for ev in trail.events(env.store, client_key=client, since=start):
        click.echo(_json.dumps(trail.event_dict(ev), sort_keys=True) if as_json else trail.event_line(ev))
