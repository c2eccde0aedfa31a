"""`bridge review`: the descriptions the last publish redacted or withheld."""

from __future__ import annotations

import json

import click

from bridge.cli.base import Env, cli, handle_errors, pass_env


@cli.command()
@click.option("--client", "clients", multiple=True, help="Only this client (repeatable). Default: every client.")
@click.option("--withheld", "withheld_only", is_flag=True, help="Only descriptions withheld whole.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: one object per description.")
@pass_env
@handle_errors
def review(env: Env, clients: tuple[str, ...], withheld_only: bool, as_json: bool) -> None:
    """List the descriptions the last publish redacted or withheld, where and why.

    A description is *redacted* when parts of it were replaced ("[removed]", or a
    person's name by the name the client's policy shows) and *withheld* when the leak
    guard still found a hidden value in it: the client then reads "details withheld"
    on that row, and the rest of the portal is published. Each line names the entry
    (source and id, date, project, person as shown) and the reason, never the removed
    text. Fix the note in the tracker, or add a term or pattern to `[redact]`.

    \b
    Example:
      bridge review --client acme
      bridge review --withheld --json
    """
    from bridge.review import review_items

    keys = [env.config.client(k).key for k in clients] or None
    items = review_items(env.store, keys, action="withheld" if withheld_only else None)
    if as_json:
        click.echo(json.dumps([i.as_json() for i in items], indent=2, ensure_ascii=False))
        return
    if not items:
        click.echo("Nothing was redacted or withheld in the last publish" + (f" of {', '.join(clients)}." if clients else "."))
        return
    current = None
    for i in items:
        if i.client_key != current:
            current = i.client_key
            mine = [x for x in items if x.client_key == current]
            held = sum(1 for x in mine if x.action == "withheld")
            when = f" (published {i.published_at:%Y-%m-%d %H:%M} UTC)" if i.published_at else ""
            click.echo(f"{current}: {held} withheld, {len(mine) - held} redacted{when}")
        click.echo(f"  {i.action:<8} {i.spent_date.isoformat()}  {i.source}:{i.entry_id}  {i.project} / {i.person}")
        click.echo(f"           {'; '.join(i.reasons)}")
