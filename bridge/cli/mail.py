"""Mail: check the [smtp] settings with a test message."""

from __future__ import annotations

import click

from bridge.cli.base import Env, cli, handle_errors, pass_env


@cli.command()
@click.option("--test", "to", required=True, metavar="ADDRESS", help="Send a test message to ADDRESS now.")
@pass_env
@handle_errors
def mail(env: Env, to: str) -> None:
    """Send a test message through [smtp], so invitations and alerts are known to arrive.

    Mail is off until [smtp] host is set; until then nothing tries to send (no failing
    connection every cycle). The login comes from the environment variables named by
    user_env and password_env, never from the file.

    \b
    Example:
      bridge mail --test you@agency.example
    """
    from publishers.mail import send_test_message

    smtp = env.config.smtp
    send_test_message(env.config, to)
    click.echo(f"test message sent to {to} through {smtp.host}:{smtp.port} ({smtp.security}); check the inbox "
               "(and the spam folder).")
