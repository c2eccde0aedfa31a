"""Logging set-up: human lines on a terminal, JSON lines for machines; secrets scrubbed."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import threading
import time
from typing import TextIO

_SCRUB = re.compile(r"(?i)(bearer\s+|access_token=|refresh_token=|token=|X-Amz-Signature=|Signature=)[^\s&\"']+")


def scrub_text(text: str) -> str:
    """Token-looking fragments (bearer tokens, signatures, credentials in URLs) starred out."""
    text = _USERINFO.sub(r"\1***@", text)
    return _SCRUB.sub(lambda m: m.group(1) + "***", text)


_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)


class _ScrubFilter(logging.Filter):
    """Last line of defence: a token-looking fragment never reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = scrub_text(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


# Structured fields a record may carry (`log.info(..., extra={"source": ..., "page": 3})`);
# JSON lines show them as keys of their own, so a collector can filter without parsing text.
FIELDS = ("source", "resource", "page", "requests", "seconds", "client", "records", "status", "attempt", "wait_seconds")


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, event, message, logger and its fields.

    `event` names what happened ("sync.page", "http.retry"); a record without one is
    named after its logger ("bridge.sync" -> "sync.log").
    """

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None) or f"{record.name.removeprefix('bridge.')}.log"
        out: dict[str, object] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname.lower(),
            "event": event,
            "message": record.getMessage(),
            "logger": record.name,
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = round(value, 3) if isinstance(value, float) else value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class JsonLinesStderr(io.TextIOBase):
    """stderr in JSON mode: any line a command writes there (progress, summaries, click's
    "Error: ..." and even an unexpected traceback) becomes one JSON object, so a log
    collector never meets a line it cannot parse. Lines that are JSON already pass as is.
    """

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner
        self._pending = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "backslashreplace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False  # no live progress bars: each update would be a line

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            while "\n" in self._pending:
                line, self._pending = self._pending.split("\n", 1)
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._emit(self._pending)
                self._pending = ""
            self.inner.flush()

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        stripped = line.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                json.loads(stripped)
            except ValueError:
                pass
            else:
                self.inner.write(stripped + "\n")
                return
        text = scrub_text(line.rstrip())
        level = "error" if text.startswith(("Error:", "Traceback", "  File ")) or " FAILED" in text else "info"
        out = {"timestamp": _timestamp(time.time()), "level": level, "event": "cli.output", "message": text}
        self.inner.write(json.dumps(out, ensure_ascii=False) + "\n")


def setup_logging(fmt: str = "human", verbose: int = 0) -> None:
    # JSON lines feed a collector, which wants the run's events (info), not only trouble
    base = logging.INFO if fmt == "json" else logging.WARNING
    level = base - 10 * min(verbose, 2) if verbose else base
    level = max(level, logging.DEBUG)
    if os.environ.get("BRIDGE_LOG_LEVEL"):
        level = getattr(logging, os.environ["BRIDGE_LOG_LEVEL"].upper(), level)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_bridge", False):
            root.removeHandler(h)
    if fmt == "json" and not isinstance(sys.stderr, JsonLinesStderr):
        sys.stderr = JsonLinesStderr(sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    handler._bridge = True  # type: ignore[attr-defined]
    handler.addFilter(_ScrubFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "botocore", "boto3", "urllib3", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
