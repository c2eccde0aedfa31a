"""Scrubbing secrets out of what we log: URLs with tokens in their query, error bodies."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = re.compile(
    r"(token|secret|key|password|signature|credential|code|auth|x-amz-|policy)", re.I
)


def sanitize_url(url: str) -> str:
    """Replace the values of secret-looking query parameters with ***."""
    parts = urlsplit(str(url))
    if not parts.query:
        return str(url)
    query = [(k, "***" if _SECRET_PARAMS.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="[]*:,")))


def scrub(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """Remove any known secret value from a message before it is logged or raised."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text
