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
