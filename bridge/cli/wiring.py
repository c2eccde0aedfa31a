"""The composition root: the one place in `bridge/` that builds connectors and publishers.

Every command module asks these functions for its parts, so swapping a part (a test's fake
renderer, a local folder instead of S3) happens here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.cli.base import Env


def connector_factory(env: Env) -> Callable[[Any], Any]:
    """Builds a source's connector with the agency's zone and the store (for OAuth tokens)."""
    from connectors import build_connector

    def make(source_cfg):  # type: ignore[no-untyped-def]
        return build_connector(source_cfg, tz=env.config.agency.zone, store=env.store)

    return make


def alert_mailer(env: Env) -> Callable[[list[str], str, str, str], None] | None:
    """Sends alert mail through [smtp], or None when alerts go by no e-mail."""
    if not env.config.alerts.email:
        return None
    from publishers.mail import send_mail

    smtp = env.config.smtp

    def mail(to: list[str], subject: str, text: str, html: str) -> None:
        send_mail(smtp, to, subject, text, html)

    return mail


def renderer() -> Any:
    """The renderer every publish uses (tests replace it here)."""
    from publishers.render import render_portal

    return render_portal


def target(env: Env, out_dir: str | None = None) -> Any:
    """The configured publish target, or a local folder for `--out`."""
    from publishers import publisher_for
    from publishers.local import LocalPublisher

    return LocalPublisher(out_dir) if out_dir else publisher_for(env.config.publish)


def protector(env: Env) -> Any:
    """The passphrase hook (bridge.passphrase), applied after the leak guard, before upload."""
    try:
        from bridge.passphrase import apply_protection
        from publishers.protect import protect
    except ImportError:  # pragma: no cover - lands with the passphrase issue
        return None
    return lambda client, files: apply_protection(env.store, client, files, protect)


def s3_client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url)



def tracker_reports(env: Env) -> Callable[[str, list[str], Any], Any]:
    """fetch(source, client ids, today): the tracker's own aggregates, for `bridge verify`."""
    from connectors.reports import tracker_figures

    make = connector_factory(env)

    def fetch(source: str, client_ids: list[str], today: Any) -> Any:
        conn = make(env.config.source(source))
        try:
            return tracker_figures(conn, client_ids, today)
        finally:
            conn.close()

    return fetch


def digest_sender(env: Env) -> Callable[[Any, list[str]], None]:
    """Words a weekly digest in the client's language and sends it through [smtp]."""
    from publishers.digest_mail import digest_message
    from publishers.mail import send_message

    def send(digest: Any, to: list[str]) -> None:
        send_message(env.config.smtp, digest_message(env.config, digest, to))

    return send
