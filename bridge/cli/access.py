"""Portal access: passphrases, the IP bucket policy, the audit trail."""

from __future__ import annotations

from typing import Any

import click

from bridge.cli import wiring
from bridge.cli.base import Env, cli, handle_errors, pass_env


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
    changed = apply_policy(wiring.s3_client(pub.region, pub.endpoint_url), bucket, doc)
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
        stats = trail.ingest(env.store, wiring.s3_client(acfg.region, acfg.endpoint_url), acfg.log_bucket,
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
