"""The `bridge` command line: a thin layer over the library, and the composition root.

This package is the only place in `bridge/` that imports `connectors` and `publishers`
(through `wiring`). Each module holds one group of commands; every command calls a library
function, and domain errors become one clean message and exit 1.
"""

from __future__ import annotations

from bridge.cli.base import Env, cli, main

# Importing a command module adds its commands to `cli`.
from bridge.cli import (  # noqa: E402,F401
    access, demo, mail, offboard, operate, portals, review, setup, sources, verify, workers,
)

__all__ = ["Env", "cli", "main"]
