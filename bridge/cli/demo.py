"""The generated agency: `bridge sandbox` and `bridge demo`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from bridge.cli import wiring
from bridge.cli.base import Env, cli, handle_errors
from bridge.cli.portals import held_back_text
from bridge.cli.sources import sync
from bridge.errors import BridgeError


class _SandboxCommand(click.Command):
    """Appends the sandbox's admin API (kept once, in connectors/sandbox/server.py) to --help."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help_text(ctx, formatter)
        from connectors.sandbox.server import ADMIN_HELP

        formatter.write_paragraph()
        with formatter.indentation():
            for line in ADMIN_HELP.rstrip().splitlines():  # verbatim: the route table is aligned
                formatter.write(" " * formatter.current_indent + line + "\n")


@cli.command(cls=_SandboxCommand)
@click.option("--port", type=int, default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated agency (same seed, same data).")
@click.option("--entries", type=int, default=1500, show_default=True,
              help="How many time entries to generate (per provider account).")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), default=None, help="The agency's 'today' (default: the real date).")
@click.option("--no-rate-limits", is_flag=True, help="Do not simulate the providers' rate limits (benchmarks).")
@click.option("--shared-agency", is_flag=True,
              help="Every provider serves the same agency under the same ids (connector comparisons) "
                   "instead of its own account.")
def sandbox(port: int, seed: int, entries: int, today: Any, no_rate_limits: bool, shared_agency: bool) -> None:
    """Serve Harvest, FreshBooks and Productive.io locally, each from its own generated account.

    Stands in for three real tracker accounts of one agency: each provider serves its own
    clients and projects, and two clients are tracked in two trackers under different ids.
    Prints each provider's base URL and the demo credentials, then serves until Ctrl-C.
    FreshBooks' OAuth authorization-code flow works too (`bridge auth`): its authorize page
    approves at once and redirects with a code.

    \b
    Example:
      bridge sandbox --port 8765
      bridge sandbox --port 8765 --entries 200000 --no-rate-limits --shared-agency
    """
    from connectors.sandbox import describe, start_sandbox

    server = start_sandbox(seed=seed, entries=entries, port=port, rate_limits=not no_rate_limits,
                           today=today.date() if today else None, shared=shared_agency)
    for line in describe(server):
        click.echo(line)
    click.echo("Press Ctrl-C to stop.")
    server.wait()


def client_totals(env: Env) -> list[dict[str, Any]]:
    """Per portal client: hours to date, this week, billable share, open invoices.

    Read from the one figures computation (bridge/figures.py), so these are the numbers
    each client's portal shows, not a second count of the store."""
    from bridge.figures import all_client_figures
    from bridge.models import utcnow

    out = []
    for client, fig in zip(env.config.clients, all_client_figures(env.store, env.config, utcnow())):
        total = fig.total_seconds
        out.append({
            "client": client.name, "sources": ", ".join(client.sources), "hours": round(total / 3600, 2),
            "this_week": round(sum(fig.seconds_this_week_by_person.values()) / 3600, 2),
            "billable_pct": round(100 * fig.billable_seconds / total) if total else 0,
            "open_invoices": sum(1 for _inv, status in fig.invoices if status in ("open", "partial", "overdue")),
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
        _demo_verify(env)  # while the sandbox still answers
    except SystemExit as exc:
        if exc.code:
            raise click.ClickException("the demo sync failed; see the errors above") from None
    finally:
        box.stop()
    rows = client_totals(env)
    click.echo("\nPer-client totals, as each portal shows them:")
    width = max((len(r["client"]) for r in rows), default=10)
    src = max((len(r["sources"]) for r in rows), default=7)
    click.echo(f"  {'client'.ljust(width)}  {'sources'.ljust(src)} {'hours':>9} {'this week':>10} {'billable':>9} {'open inv.':>9}")
    for r in rows:
        click.echo(f"  {r['client'].ljust(width)}  {r['sources'].ljust(src)} {r['hours']:>9.2f} {r['this_week']:>10.2f} "
                   f"{r['billable_pct']:>8}% {r['open_invoices']:>9}")
    _demo_publish(env, out)


def _demo_verify(env: Env) -> None:
    """The synced figures against each tracker's own reports (`bridge verify`): none may differ."""
    from bridge.cli.verify import run_verify
    from bridge.verify import report_lines

    results = run_verify(env)
    checked = sum(r.checked for r in results)
    if all(r.ok for r in results):
        click.echo(f"\nChecked against each tracker's own reports: {checked} figures, no difference.")
        return
    for line in report_lines(results):
        click.echo(line, err=True)
    raise click.ClickException("the demo's figures differ from the trackers' own reports; see the lines above")


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

    report = publish_all(env.store, env.config, wiring.target(env), wiring.renderer(), protect=wiring.protector(env))
    click.echo("\nPortals:")
    for o in report.outcomes:
        if o.ok:
            click.echo(f"  {env.config.client(o.client_key).name}: {o.url}")
            note = held_back_text(o)
            if note:
                click.echo(f"    {note}")
        else:
            click.echo(f"  {o.client_key}: FAILED - {o.error}", err=True)
    if report.failed:
        names = ", ".join(o.client_key for o in report.failed)
        raise BridgeError(f"{len(report.failed)} of {len(report.outcomes)} demo portals failed to publish ({names}); "
                          "see the errors above")
