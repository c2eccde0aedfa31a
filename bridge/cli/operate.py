"""Scheduled operation: run, status, alerts."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bridge.cli import wiring
from bridge.cli.base import Env, cli, exit_scheduler, handle_errors, pass_env


def _scheduled_publisher(env: Env) -> Callable[[set[str]], None]:
    from bridge.locks import client_lock
    from bridge.publishing import publish_all

    # the same target and renderer as `bridge publish` (helpers below)
    target, render = wiring.target(env), wiring.renderer()

    def publish(keys: set[str]) -> None:
        # One client at a time under its publish lock, so a `bridge publish` by hand or a
        # Celery worker never writes the same portal at the same moment. publish_all logs
        # and audits each failed client; the others are still published.
        for key in sorted(keys):
            with client_lock(env.store, key, wait=True):
                # only_if_changed: a restart (or a sync that changed nothing this client shows)
                # does not render and upload a portal whose inputs are what it was made from
                publish_all(env.store, env.config, target, render, clients=[key], protect=wiring.protector(env),
                            only_if_changed=True)

    return publish


def _run_jobs(env: Env, *, publish: bool) -> Any:
    from bridge.alerts import channels_configured, run_alerts
    from bridge.locks import source_lock
    from bridge.scheduler import Jobs
    from bridge.sync import sync_all

    factory = wiring.connector_factory(env)
    log = logging.getLogger("bridge.run")

    def sync(source: str, full: bool, stop: Any) -> Any:
        # between nightly full passes, deletions are checked when `reconcile_every` is due,
        # so an idle cycle costs one request per resource
        [report] = sync_all(env.config, env.store, factory, names=[source], full=full,
                            reconcile=True if full else "due",
                            lock=lambda name: source_lock(env.store, name), stop=stop)
        # A skipped sync (the source's lock was held) is reported once, by whoever runs the job.
        (log.debug if report.status == "skipped" else log.info)(
            "%s: %s%s - %d new, %d updated, %d deleted, %d requests, %.1f s", source, report.status,
            " (full)" if full else "", report.new, report.updated, report.deleted, report.requests, report.seconds)
        return report

    def alerts(keys: set[str]) -> None:
        if channels_configured(env.config):
            run_alerts(env.store, env.config, mail=wiring.alert_mailer(env), clients=keys)

    def reinvite(keys: set[str]) -> None:
        from bridge.publishing import reinvite as send_again
        from publishers import mail

        send_again(env.store, env.config, keys, compose=mail.invitation, send=lambda m: mail.send_message(env.config.smtp, m))

    def verify(keys: set[str]) -> None:
        from bridge.cli.verify import run_verify
        from bridge.verify import report_lines

        for line in report_lines(run_verify(env, tuple(sorted(keys)))):
            (log.warning if line.lstrip().startswith(("DIFF", "ERROR")) else log.info)("verify: %s", line)

    def digest() -> None:
        send_digests_now(env)

    return Jobs(sync=sync, publish=_scheduled_publisher(env) if publish else None, alerts=alerts,
                reinvite=reinvite if publish else None, digest=digest if publish else None,
                verify=verify)


def send_digests_now(env: Env, clients: list[str] | None = None, *, dry_run: bool = False,
                     force: bool = False) -> list[Any]:
    """The weekly digests that are due, through [smtp], each in its client's language."""
    from bridge.digest import send_digests
    from bridge.models import utcnow
    from bridge.views import build_portal_view

    now = utcnow()
    mailer = wiring.digest_sender(env)
    return send_digests(env.store, env.config, now=now, clients=clients, dry_run=dry_run, force=force,
                        build_view=lambda client: build_portal_view(env.store, env.config, client, now=now),
                        send=mailer)


@cli.command()
@click.option("--no-publish", is_flag=True, help="Only sync; do not re-publish portals or send alerts.")
@pass_env
@handle_errors
def run(env: Env, no_publish: bool) -> None:
    """Sync every source on its schedule and re-publish the clients whose data changed, until stopped.

    Each source syncs on its `every` interval (default 5m) or `cron` expression (in the
    agency's time zone); every night a full pass finds records deleted at the provider.
    Signed links are re-issued before they expire, and budget alerts go out as
    thresholds are crossed.

    Run it on as many machines as you like for availability: one process (the leader)
    schedules; the others wait as standbys and take over within one sync interval when
    it stops. Every process must use the same configuration: one that differs from the
    leader's refuses to start and names the differing keys. `bridge status` shows the
    leader and the standbys.

    The schedule's run times are kept in the store, so a restart neither repeats nor
    loses a run. SIGTERM or Ctrl-C stops cleanly: the page being written is committed,
    then the process exits 0. If the scheduler itself dies or stops firing, the process
    logs why and exits 3, for the service manager to restart it.

    \b
    Example:
      bridge run -v
    """
    from bridge.scheduler import run_scheduler

    path = str(Path(env.config_path).resolve())
    cfg = env.config  # fail on a bad config before anything starts
    jobs = _run_jobs(env, publish=not no_publish)

    def leading() -> None:
        click.echo(f"bridge run: leading: {len(cfg.sources)} source(s) scheduled, {len(cfg.clients)} portal(s); "
                   "Ctrl-C or SIGTERM stops.", err=True)

    click.echo("bridge run: waiting for the leader lock (a standby until the current leader stops)", err=True)
    exit_scheduler(run_scheduler(cfg, env.store, jobs, config_path=path, publish_on_start=not no_publish,
                                 on_leader=leading))


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
    results = run_alerts(env.store, env.config, mail=wiring.alert_mailer(env), clients=chosen)
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


@cli.command()
@click.option("--client", "clients", multiple=True, help="Only this client (repeatable); sends even without `digest = true`.")
@click.option("--dry-run", is_flag=True, help="Say who would get a digest now; send and record nothing.")
@click.option("--force", is_flag=True, help="Send again a week that was already sent.")
@pass_env
@handle_errors
def digest(env: Env, clients: tuple[str, ...], dry_run: bool, force: bool) -> None:
    """Send the weekly digest: last week's hours, each budget's status and the portal link.

    Clients with `digest = true` get one mail a week, in their own language, to their
    `contacts`; `bridge run` sends it by itself, so this command is for a first try or a
    resend. The figures are the portal's own. Exits 1 if a digest could not be delivered.

    \b
    Example:
      bridge digest --client acme --dry-run
    """
    for key in clients:
        env.config.client(key)
    results = send_digests_now(env, list(clients) or None, dry_run=dry_run, force=force)
    if not results:
        click.echo("No client has `digest = true`; name one with --client to send it anyway.")
    failed = False
    for r in results:
        week = f" (week of {r.week_start:%Y-%m-%d})" if r.week_start else ""
        if r.sent_to and r.skipped is None:
            click.echo(f"{r.client_key}{week}: sent to {', '.join(r.sent_to)}")
        elif r.skipped == "dry run":
            click.echo(f"{r.client_key}{week}: would send to {', '.join(r.sent_to)}")
        else:
            failed = failed or (r.skipped or "").startswith("not delivered")
            click.echo(f"{r.client_key}{week}: not sent - {r.skipped}", err=bool(failed))
    if failed:
        sys.exit(1)
