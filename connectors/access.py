"""Tell a token that may not read one resource from a token that does not work at all.

A provider answers 403 both for wrong credentials and for a valid user without a
permission (Harvest: a non-admin on `/clients`). Only the identity call can tell them
apart: when it succeeds, the 403 is about that resource, the rest of the source can still
sync, and the message names the permission instead of blaming the token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from bridge.errors import ForbiddenError, NotPermitted, SourceError

T = TypeVar("T")


class Identity:
    """The connector's identity call, made at most once and remembered."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._call = call
        self._body: Any = None
        self._known = False

    def get(self) -> Any:
        if not self._known:
            self._body = self._call()  # an AuthError here means the credentials are wrong
            self._known = True
        return self._body

    def remember(self, body: Any) -> Any:
        self._body, self._known = body, True
        return body


def guarded(
    items: Iterator[T], *, identity: Identity, source: str, resource: str, advice: Callable[[Any], str]
) -> Iterator[T]:
    """`items`, with a 403 turned into NotPermitted when the identity call succeeds."""
    try:
        yield from items
    except ForbiddenError as exc:
        try:
            me = identity.get()
        except SourceError:
            # the identity call fails too (refused credentials, or unreachable): the 403
            # cannot be shown to be about this resource alone; keep the credentials advice
            raise exc from None
        raise NotPermitted(
            f"{source}: the token works but may not read {resource} (HTTP 403); {advice(me)} "
            "The rest of this source still syncs; this resource is skipped until the permission is given.",
            source=source, resource=resource,
        ) from None
