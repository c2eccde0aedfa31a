"""Publishing targets, chosen by the scheme of `publish.target` (file:// or s3://)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from bridge.config import PublishConfig
from bridge.errors import ConfigError
from publishers.local import LocalPublisher
from publishers.s3 import S3Publisher

PUBLISHERS: dict[str, Any] = {"file": LocalPublisher, "s3": S3Publisher}


def publisher_for(cfg: PublishConfig) -> LocalPublisher | S3Publisher:
    """Build the publisher for a config's target URL; the renderer never learns which."""
    scheme = urlsplit(cfg.target).scheme
    try:
        cls = PUBLISHERS[scheme]
    except KeyError:
        raise ConfigError(
            f"publish.target {cfg.target!r}: unknown scheme {scheme!r}; use {' or '.join(s + '://' for s in PUBLISHERS)}"
        ) from None
    return cls.from_config(cfg)
