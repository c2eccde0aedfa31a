"""What every command shares: the `bridge` group, its global options, `Env`, error handling.

Command modules (`sources`, `operate`, `portals`, `access`, `demo`, …) add their commands
to `cli`; `bridge/cli/wiring.py` builds the parts they need.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
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


# Global options people also type after the command (`bridge status -c /etc/bridge.toml`,
# `bridge sync -v`): they are moved in front of it before click parses the line.
_GLOBAL_WITH_VALUE = ("-c", "--config", "--log-format")
_GLOBAL_FLAGS = ("-v", "--verbose")


def exit_scheduler(code: int) -> None:
    """End `bridge run`/`bridge beat` with `code`. After a scheduler failure (exit 3) a stuck
    thread, the likely cause, would keep the interpreter from exiting, so the process
    ends without waiting for it and the service manager can restart it."""
    from bridge.scheduler import EXIT_SCHEDULER_FAILED

    if code == EXIT_SCHEDULER_FAILED:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def hoist_global_options(args: list[str]) -> list[str]:
    """Return args with global options found after the subcommand moved before it."""
    front: list[str] = []
    rest: list[str] = []
    seen_command = False
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i:])
            break
        if not seen_command:
            if not a.startswith("-"):
                seen_command = True
                rest.append(a)
            else:
                front.append(a)
                if a in _GLOBAL_WITH_VALUE and i + 1 < len(args):
                    front.append(args[i + 1])
                    i += 1
            i += 1
            continue
        if a in _GLOBAL_WITH_VALUE and i + 1 < len(args):
            front += [a, args[i + 1]]
            i += 2
            continue
        if any(a.startswith(f"{o}=") for o in _GLOBAL_WITH_VALUE if o.startswith("--")) or a in _GLOBAL_FLAGS \
                or (a.startswith("-v") and set(a[1:]) == {"v"}):
            front.append(a)
        else:
            rest.append(a)
        i += 1
    return front + rest


class BridgeGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args)))

    def invoke(self, ctx: click.Context) -> Any:
        # The last net under every command: whatever escapes becomes one paragraph of
        # advice and exit status 1, never a traceback (`-vv` logs the traceback too).
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - converted to a message, below
            env = ctx.find_object(Env)
            raise click.ClickException(explain(exc, env)) from None


def explain(exc: BaseException, env: "Env | None" = None) -> str:
    """One paragraph that says what failed, where, and what to do."""
    import logging

    import sqlalchemy as sa

    from bridge.logs import scrub_text

    config = env.config_path if env is not None else DEFAULT_CONFIG
    if isinstance(exc, BridgeError):
        return str(exc)
    logging.getLogger("bridge.cli").debug("details", exc_info=exc)
    if isinstance(exc, sa.exc.SQLAlchemyError):
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
        where = env._store if env is not None and env._store is not None else "the store"
        return scrub_text(
            f"{where!r}: {first} ({type(orig).__name__}). Check [store] url in {config}, that the database file or "
            "server is reachable and writable by this user, and that the disk is not full"
        )
    if isinstance(exc, UnicodeError):
        return f"a file or value is not valid text ({exc}); files the bridge reads must be UTF-8 (config: {config})"
    if isinstance(exc, OSError):
        name = exc.filename or "a file"
        return scrub_text(
            f"{name}: {exc.strerror or type(exc).__name__}. Check that the path exists, is the kind of file expected "
            f"(not a folder) and that this user may read and write it (config: {config})"
        )
    return scrub_text(
        f"unexpected {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'}. "
        f"This is a bug in the bridge; run the command again with -vv and report what it logs (config: {config})"
    )


pass_env = click.make_pass_decorator(Env)


@click.group(cls=BridgeGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    import bridge.cli  # noqa: F401  (registers every command module)

    cli(prog_name="bridge")

