"""Logging set-up: human lines on a terminal, JSON lines for machines; secrets scrubbed."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time

_SCRUB = re.compile(r"(?i)(bearer\s+|access_token=|refresh_token=|token=|X-Amz-Signature=|Signature=)[^\s&\"']+")


class _ScrubFilter(logging.Filter):
    """Last line of defence: a token-looking fragment never reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = _SCRUB.sub(lambda m: m.group(1) + "***", msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("source", "client", "resource"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(fmt: str = "human", verbose: int = 0) -> None:
    level = logging.WARNING - 10 * min(verbose, 2) if verbose else logging.WARNING
    if os.environ.get("BRIDGE_LOG_LEVEL"):
        level = getattr(logging, os.environ["BRIDGE_LOG_LEVEL"].upper(), level)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_bridge", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._bridge = True  # type: ignore[attr-defined]
    handler.addFilter(_ScrubFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "botocore", "boto3", "urllib3", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
