"""The error tree: each class is named for what the caller should do about it.

`str(error)` is always a sentence a person can act on, and never carries a secret.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class ConfigError(BridgeError):
    """The configuration is missing, malformed or refers to something absent. Fix the file."""


class SourceError(BridgeError):
    """Something went wrong talking to a provider; fails that source's run, not the others."""

    def __init__(self, message: str, *, source: str = "", resource: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.resource = resource


class AuthError(SourceError):
    """401/403: credentials or account ids are wrong. Never retried."""


class ForbiddenError(AuthError):
    """HTTP 403. Wrong credentials to the HTTP client; a connector that has seen its identity
    call succeed re-raises it as NotPermitted (the token works but may not read this)."""


class NotPermitted(SourceError):
    """The token is valid but lacks a permission for one resource: that resource is skipped
    (its cursor untouched) and the rest of the source still syncs. Never retried."""


class RetryableSourceError(SourceError):
    """408/429/5xx or a transport fault; the HTTP client retries it."""

    def __init__(
        self, message: str, *, source: str = "", resource: str = "", retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, source=source, resource=resource)
        self.retry_after = retry_after
        self.status = status


class RateLimitedError(SourceError):
    """The provider asked us to wait (Retry-After) longer than the configured maximum.

    The source stops at once, with everything so far committed, and is not asked again
    before `resume_at` (aware UTC); the next run after that resumes where this one stopped.
    """

    def __init__(self, message: str, *, source: str = "", resource: str = "", resume_at: object = None) -> None:
        super().__init__(message, source=source, resource=resource)
        self.resume_at = resume_at


class FatalSourceError(SourceError):
    """Any other 4xx, an unexpected payload shape, or a pagination loop."""


class RecordError(BridgeError):
    """One record failed validation; it is quarantined and the sync goes on."""

    def __init__(self, message: str, *, field: str = "", source_id: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.source_id = source_id


class StoreError(BridgeError):
    """The store cannot be opened, migrated or written."""


class LockedError(BridgeError):
    """Another process holds the sync lock for this source."""


class PublishError(BridgeError):
    """Rendering or writing a portal failed; names the client and target."""


class LeakError(PublishError):
    """A hidden value was found in rendered output; the client's publish is stopped."""
