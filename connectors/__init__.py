"""The connector registry: `source.kind` -> connector class, and the one place that builds them."""

from __future__ import annotations

import inspect
from typing import Any
from zoneinfo import ZoneInfo

from bridge.config import SourceConfig
from bridge.connector import Connector
from bridge.errors import ConfigError
from connectors.freshbooks import FreshBooksConnector
from connectors.harvest import HarvestConnector
from connectors.productive import ProductiveConnector

CONNECTORS: dict[str, type] = {
    "harvest": HarvestConnector,
    "freshbooks": FreshBooksConnector,
    "productive": ProductiveConnector,
}


def build_connector(source: SourceConfig, *, tz: ZoneInfo, store: Any = None, **kw: Any) -> Connector:
    """Build the connector for one configured source.

    Args:
        source: the source's config block; `kind` picks the class.
        tz: the agency's time zone (days derived from timestamps are counted in it).
        store: handed only to connectors whose constructor takes `store` (FreshBooks keeps
            its rotating refresh token there).
        **kw: test seams passed through: transport, retry, sleep, clock.

    Raises:
        ConfigError: unknown kind, or settings/secrets the connector needs are missing.
    """
    try:
        cls = CONNECTORS[source.kind]
    except KeyError:
        raise ConfigError(
            f"sources '{source.name}': kind {source.kind!r} has no connector; available: {', '.join(sorted(CONNECTORS))}"
        ) from None
    if "store" in inspect.signature(cls).parameters:
        kw["store"] = store
    return cls(source, tz=tz, **kw)
