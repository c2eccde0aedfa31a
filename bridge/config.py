"""The TOML configuration: pydantic models, validated at load with errors that name the key.

Secrets never live in the file: a source names the *environment variables* that hold them
(`token_env = "HARVEST_TOKEN"`), and `secret()` reads them when a connector is built.
"""

from __future__ import annotations

import email.utils
import os
import re
import tomllib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bridge.errors import ConfigError
from bridge.i18n import check_locale

KINDS = ("harvest", "freshbooks", "productive")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_STORE_URL = "sqlite:///clearhours.db"


# An environment variable's name, as `token_env` and every other `*_env` key must hold.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def looks_like_secret(value: str) -> bool:
    """A `*_env` value that is a token rather than a variable name (pasted by mistake)."""
    if not ENV_NAME.fullmatch(value):
        return True
    # Names are words joined by underscores; tokens are long runs of mixed letters and
    # digits (FreshBooks refresh tokens are 64 hex characters, which a name pattern allows).
    for part in value.split("_"):
        digits = any(ch.isdigit() for ch in part)
        mixed = any(ch.islower() for ch in part) and any(ch.isupper() for ch in part)
        if digits and (len(part) >= 20 or (len(part) >= 12 and mixed) or (len(part) >= 16 and not part.isupper())):
            return True
    return False


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _env_names(cls, data: Any) -> Any:
        # Every `*_env` key names a variable; a secret pasted there is refused without
        # repeating it, since this message reaches terminals, logs and CI output.
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(key, str) and key.endswith("_env") and isinstance(value, str) and value and looks_like_secret(value):
                    raise ValueError(
                        f"{key} must name an environment variable (like HARVEST_TOKEN), but holds something that looks "
                        f"like a secret ({len(value)} characters, not repeated here). Put the secret in an environment "
                        f"variable and write that variable's name in {key}; if the secret was committed or shared, revoke it"
                    )
        return data


LOOPBACK_HOSTS = ("localhost", "localhost.", "ip6-localhost")


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() in LOOPBACK_HOSTS or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(value: str, key: str, *, allow_insecure_http: bool = False) -> str:
    """An API or token URL: http(s) only, no credentials in it, plain http only to loopback."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value.strip())
        host = parts.hostname or ""
        _ = parts.port  # a non-numeric port raises here
    except ValueError:
        raise ValueError(f"{key} is not a valid URL; write it like https://api.harvestapp.com/v2") from None
    if parts.username or parts.password or "@" in parts.netloc:
        raise ValueError(
            f"{key} carries a user name or password; remove them from the URL (credentials never go in the "
            "config file: name the environment variable that holds them in the source's *_env keys)"
        )
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError(f"{key} must be an http(s) URL with a host, like https://api.harvestapp.com/v2 (got scheme {parts.scheme or 'none'!r})")
    try:
        if ipaddress.ip_address(host.strip("[]")).is_link_local:
            raise ValueError(f"{key} points at a link-local address ({host}), such as a cloud metadata service; use the provider's API host")
    except ValueError as exc:
        if "link-local" in str(exc):
            raise
    if parts.scheme.lower() == "http" and not _is_loopback(host) and not allow_insecure_http:
        raise ValueError(
            f"{key} uses plain http to {host}, which would send the API token unencrypted; use https, "
            "or set allow_insecure_http = true on this source if the network between is trusted"
        )
    return value


def parse_duration(value: str | int | float) -> timedelta:
    """'90s', '5m', '2h', '7d', '1w' (or a number of seconds) -> timedelta."""
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration like '90s', '5m', '2h', '7d' or '1w'")
    n, unit = float(m.group(1)), m.group(2)
    return timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit])


class StoreConfig(_Model):
    url: str = Field(DEFAULT_STORE_URL, description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://…")

    @field_validator("url")
    @classmethod
    def _no_password(cls, v: str) -> str:
        from urllib.parse import urlsplit

        try:
            password = urlsplit(v).password
        except ValueError:
            password = None
        if password:
            raise ValueError(
                "the store URL carries a password; remove it and give it to PostgreSQL the usual way "
                "(the PGPASSWORD environment variable, ~/.pgpass or a service file), so it stays out of the config"
            )
        return v


class AgencyConfig(_Model):
    name: str = Field("Our agency", description="Shown on every portal.")
    timezone: str = Field("UTC", description="IANA zone; days and weeks are counted in it.")
    week_start: str = Field("monday", description="First day of the week for weekly figures.")
    logo_url: str | None = Field(None, description="A data: URL or https URL of the logo.")
    accent_color: str = Field("#1f5fbf", description="Hex colour for headings and charts.")
    contact: str | None = Field(None, description="Who clients should ask, e.g. 'Alice <alice@…>'; the portals' \"Ask about this\" links write to this address.")
    email: str | None = Field(None, description="Where agency alerts go.")
    locale: str = Field("en", description="Default language and formats of portals, exports and mail (en, de, de_CH, fr…).")

    @field_validator("locale")
    @classmethod
    def _locale(cls, v: str) -> str:
        return check_locale(v)

    @field_validator("contact")
    @classmethod
    def _contact(cls, v: str | None) -> str | None:
        # the portals' "Ask about this" links are mailto: links to it, so it must hold one address
        if v is None or not v.strip():
            return None
        addr = email.utils.parseaddr(v)[1]
        if not re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+", addr or ""):
            raise ValueError(f"{v!r} holds no e-mail address; write it like 'Alice Martin <alice@agency.example>'")
        return v.strip()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not an IANA time zone such as 'Europe/Berlin'") from None
        return v

    @field_validator("week_start")
    @classmethod
    def _week(cls, v: str) -> str:
        if v.lower() not in WEEKDAYS:
            raise ValueError(f"{v!r} is not one of {', '.join(WEEKDAYS)}")
        return v.lower()

    @field_validator("accent_color")
    @classmethod
    def _color(cls, v: str) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", v):
            raise ValueError(f"{v!r} is not a colour like '#1f5fbf'")
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def week_start_index(self) -> int:
        return WEEKDAYS.index(self.week_start)


class SourceConfig(_Model):
    name: str = Field(description="Instance name, written to every record's `source`.")
    kind: str = Field(description="harvest, freshbooks or productive.")
    base_url: str | None = Field(None, description="Defaults to the provider's real API.")
    account_id: str | None = Field(None, description="Harvest account id / FreshBooks account id.")
    business_id: str | None = Field(None, description="FreshBooks business id (discovered if unset).")
    organization_id: str | None = Field(None, description="Productive organization id.")
    token_env: str | None = Field(None, description="Env var holding the API token (Harvest, Productive).")
    client_id_env: str | None = Field(None, description="Env var holding the OAuth client id (FreshBooks).")
    client_secret_env: str | None = Field(None, description="Env var holding the OAuth client secret.")
    refresh_token_env: str | None = Field(None, description="Env var holding the first refresh token.")
    token_url: str | None = Field(None, description="OAuth token endpoint, if not the provider's default.")
    redirect_uri: str | None = Field(None, description="FreshBooks: the app's redirect URI, sent with token refreshes.")
    authorize_url: str | None = Field(None, description="FreshBooks: the OAuth authorize page, if not auth.freshbooks.com (`bridge auth`).")
    user_agent: str = Field("clearhours-bridge (https://github.com/clearhours/clearhours)", description="Harvest requires one naming the app and a contact.")
    every: str | None = Field(None, description="Sync interval, e.g. '5m' (default) …")
    cron: str | None = Field(None, description="… or a crontab expression, in the agency's zone.")
    reconcile_days: int = Field(60, ge=1, description="Deletions are checked over this many past days on each sync.")
    reconcile_every: str = Field("1h", description="`bridge run` checks for deletions this often (`bridge sync` on every run).")
    overlap_seconds: int = Field(60, ge=0, description="Ask this much before the cursor, so a same-second or late-committed edit is never missed.")
    money_scale: int | None = Field(None, description="Productive: money is in minor units (100 = cents).")
    budget_unit: Literal["auto", "seconds", "hours"] = Field(
        "auto", description="FreshBooks project `budget` unit: auto (a number is seconds, a string like \"50.00\" hours), "
        "or force seconds or hours for both.",
    )
    timeout_seconds: float = Field(30.0, gt=0)
    max_retry_after_seconds: float = Field(
        600.0, ge=0,
        description="Wait what a provider's Retry-After asks up to this long; a longer wait stops the source until then.",
    )
    requests_per_window: int | None = Field(None, description="Override the provider's documented rate limit (testing).")
    window_seconds: float | None = Field(None)
    allow_insecure_http: bool = Field(False, description="Allow plain http to a host other than this machine (trusted networks only).")

    @model_validator(mode="after")
    def _urls(self) -> "SourceConfig":
        for key in ("base_url", "token_url"):
            value = getattr(self, key)
            if value is not None:
                check_url(value, key, allow_insecure_http=self.allow_insecure_http)
        return self

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"{v!r} is not one of {', '.join(KINDS)}")
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", v):
            raise ValueError(f"{v!r} must be letters, digits, '-', '_' or '.'")
        return v

    @field_validator("every", "reconcile_every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @property
    def interval(self) -> timedelta:
        return parse_duration(self.every or "5m")

    def secret(self, attr: str) -> str:
        """Read the secret whose env var name is in `attr` (e.g. 'token_env')."""
        var = getattr(self, attr)
        if not var:
            raise ConfigError(f"sources '{self.name}': {attr} is not set; name the environment variable that holds it")
        value = os.environ.get(var)
        if not value:
            raise ConfigError(
                f"sources '{self.name}': environment variable {var} (from {attr}) is not set or empty"
            )
        return value


class VisibilityConfig(_Model):
    """What one client may see. Defaults are the most private choice of each setting."""

    rates: Literal["hidden", "shown"] = "hidden"
    descriptions: Literal["detailed", "summary", "hidden"] = "summary"
    team_names: Literal["full", "first_name", "role", "anonymous"] = "anonymous"
    non_billable: Literal["shown", "hidden"] = "hidden"
    invoices: Literal["shown", "hidden"] = "hidden"
    view: Literal["realtime", "weekly"] = "weekly"
    approved_only: bool = Field(False, description=(
        "Review gate: publish only time the tracker marks approved. Harvest: approval_status 'approved' "
        "(older accounts: closed, or locked as approved; locked because invoiced is not approved). "
        "Productive: the entry's `approved` flag. FreshBooks has no approval: billed time only."
    ))
    internal_tasks: list[str] = Field(default_factory=list, description="Task names that mark internal work.")
    internal_note_prefixes: list[str] = Field(default_factory=lambda: ["[internal]"])
    internal_tags: list[str] = Field(default_factory=lambda: ["internal"])


class BudgetOverride(_Model):
    """What the agency knows about one project's budget or rate that the tracker cannot say.

    FreshBooks has no monthly budgets (a retainer reads as a lifetime budget) and its API
    hides the business rate; Harvest and Productive rarely need this. Applied wherever a
    project's budget is read, so the portal, exports, alerts and status all agree.
    """

    project: str = Field(description="'<source>:<project id>' or '<source>:<project name>', e.g. 'freshbooks:14501002'.")
    period: Literal["month", "total"] | None = Field(
        None, description="month: the budget resets on the 1st of each month; total: it covers the whole project.")
    kind: Literal["hours", "money"] | None = Field(None, description="hours or money; set together with amount.")
    amount: Decimal | None = Field(None, gt=0, description="The budget: hours, or money in the project's currency.")
    hourly_rate: Decimal | None = Field(
        None, gt=0, description="Values billable time the tracker gives no rate for (FreshBooks business rate).")

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        source, sep, ref = v.partition(":")
        if not sep or not source.strip() or not ref.strip():
            raise ValueError(f"{v!r} must be '<source>:<project id or name>', like 'freshbooks:14501002'")
        return f"{source.strip()}:{ref.strip()}"

    @model_validator(mode="after")
    def _complete(self) -> "BudgetOverride":
        if (self.kind is None) != (self.amount is None):
            raise ValueError(f"{self.project}: kind and amount go together (kind = \"hours\" or \"money\", amount = the budget)")
        if self.period is None and self.kind is None and self.hourly_rate is None:
            raise ValueError(f"{self.project}: says nothing to override; set period, kind and amount, or hourly_rate")
        return self

    @property
    def source(self) -> str:
        return self.project.partition(":")[0]

    @property
    def ref(self) -> str:
        return self.project.partition(":")[2]


class ClientConfig(_Model):
    """One portal client, possibly combining clients from several sources."""

    key: str = Field(description="Slug for the config and CLI; never published.")
    name: str = Field(description="Shown on the client's portal.")
    sources: dict[str, list[str]] = Field(description="source name -> that provider's client ids.")
    contacts: list[str] = Field(default_factory=list, description="Addresses invitations may go to.")
    visibility: VisibilityConfig = Field(default_factory=VisibilityConfig)
    thresholds: list[int] = Field(default_factory=lambda: [75, 90, 100])
    burn_window_weeks: int = Field(4, ge=1)
    budget_basis: Literal["tracker", "published"] = Field(
        "tracker", description="What budget use counts: 'tracker' = all time logged on the project, as the time "
        "tracker counts it (hidden work counted, not itemized); 'published' = only the work the portal lists.")
    notes: str | None = Field(None, description="Explanatory notes shown on the portal.")
    glossary: dict[str, str] = Field(default_factory=dict, description="Activity code -> plain explanation.")
    link_expiry: str = Field("7d", description="Signed-link lifetime (S3 SigV4 allows at most 7d).")
    alert_client: bool = Field(False, description="Also send budget alerts to this client's contacts.")
    ask_about: bool = Field(True, description="Offer \"Ask about this\" on entries, weeks and invoices: a mailto: link to agency.contact.")
    reinvite: bool = Field(True, description="When `bridge run` refreshes the link, e-mail it again to everyone invited before.")
    passphrase: bool = Field(False, description="Encrypt the portal under a passphrase.")
    allow_ips: list[str] = Field(default_factory=list, description="CIDRs allowed to open the portal.")
    idle_minutes: int = Field(30, ge=1, description="A passphrase-protected portal locks itself after this long without input.")
    budgets: list[BudgetOverride] = Field(
        default_factory=list, description="Per-project budget period/kind/amount or rate the tracker cannot express.")

    @model_validator(mode="after")
    def _budgets(self) -> "ClientConfig":
        seen: set[str] = set()
        for i, b in enumerate(self.budgets):
            if b.source not in self.sources:
                raise ValueError(
                    f"budgets[{i}].project: source {b.source!r} is not one of this client's sources "
                    f"({', '.join(self.sources) or 'none'})")
            if b.project in seen:
                raise ValueError(f"budgets[{i}].project: {b.project!r} is listed twice")
            seen.add(b.project)
        return self

    locale: str | None = Field(None, description="This client's language and formats; default: the agency's.")
    digest: bool = Field(False, description="E-mail the contacts a short weekly summary (sent by `bridge run`).")

    @field_validator("locale")
    @classmethod
    def _client_locale(cls, v: str | None) -> str | None:
        return None if v is None else check_locale(v)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", v):
            raise ValueError(f"{v!r} must be lower-case letters, digits, '-' or '_'")
        return v

    @field_validator("allow_ips")
    @classmethod
    def _allow_ips(cls, v: list[str]) -> list[str]:
        import ipaddress

        for cidr in v:
            try:
                ipaddress.ip_network(cidr.strip(), strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IP address or a CIDR range like '203.0.113.0/24' "
                                 "(without host bits)") from None
        return v

    @field_validator("link_expiry")
    @classmethod
    def _expiry(cls, v: str) -> str:
        parse_duration(v)
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: list[int]) -> list[int]:
        if any(t <= 0 for t in v):
            raise ValueError("thresholds are percentages above 0, like [75, 90, 100]")
        return sorted(set(v))


class PublishConfig(_Model):
    target: str = Field("file://./site", description="file://DIR or s3://bucket/prefix")
    region: str | None = None
    endpoint_url: str | None = Field(None, description="For S3-compatible stores.")
    sse: Literal["none", "AES256", "aws:kms"] = "none"
    kms_key_id: str | None = None
    cloudfront_domain: str | None = None
    cloudfront_key_pair_id: str | None = None
    cloudfront_private_key_file: str | None = None
    cloudfront_private_key_env: str | None = None
    refresh_before: str = Field("1d", description="Re-sign links this long before they expire.")
    retry_mode: Literal["standard", "adaptive"] = Field("standard", description="botocore retry mode for S3 throttling and 5xx.")


class SmtpConfig(_Model):
    # No host, no mail: nothing is sent (and nothing fails every cycle) until [smtp] is set up.
    host: str | None = Field(None, description="SMTP server; mail is off while unset (`bridge mail --test` checks it).")
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "none"
    user_env: str | None = None
    password_env: str | None = None
    sender: str = "clearhours <noreply@localhost>"

    @property
    def configured(self) -> bool:
        return bool(self.host)


class AlertsConfig(_Model):
    webhook_url_env: str | None = Field(None, description="Env var holding the webhook URL (it embeds a secret).")
    email: bool = True


class AuditConfig(_Model):
    """Where S3 server access logs or CloudFront standard logs are delivered, for `bridge audit --ingest`."""

    log_bucket: str | None = Field(None, description="Bucket receiving the access logs.")
    log_prefix: str = Field("", description="Key prefix of the log objects, e.g. 'logs/portals/'.")
    format: Literal["s3", "cloudfront"] = Field("s3", description="S3 server access logs or CloudFront standard logs.")
    region: str | None = None
    endpoint_url: str | None = Field(None, description="For S3-compatible stores.")


class RedactConfig(_Model):
    """Agency-wide redaction of entry descriptions, applied to every client's portal."""

    terms: list[str] = Field(default_factory=list, description="Words or phrases removed from every description (case and accents ignored).")
    patterns: list[str] = Field(default_factory=list, description="Regular expressions (Python syntax) removed from every description.")
    emails: Literal["removed", "domain"] = Field("removed", description="E-mail addresses: removed, or reduced to '[removed]@domain'.")
    urls: Literal["removed", "domain"] = Field("removed", description="Web addresses: removed, or reduced to 'domain/[removed]'.")
    allow_domains: list[str] = Field(default_factory=list, description="E-mail and web addresses at these domains (and their subdomains) stay.")

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        for i, p in enumerate(v):
            try:
                compiled = re.compile(p)
            except re.error as exc:
                raise ValueError(f"pattern {i + 1} ({p!r}) is not a valid regular expression: {exc}") from None
            if compiled.match(""):
                raise ValueError(f"pattern {i + 1} ({p!r}) matches empty text, so it would mark every gap; make it match something")
        return v

    @field_validator("terms")
    @classmethod
    def _terms(cls, v: list[str]) -> list[str]:
        for i, t in enumerate(v):
            if len(t.strip()) < 2:
                raise ValueError(f"term {i + 1} ({t!r}) is too short to match whole words safely; use two characters or more")
        return v

    @field_validator("allow_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        out = []
        for d in v:
            d = d.strip().lower().lstrip("@").rstrip(".")
            if not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}", d):
                raise ValueError(f"{d!r} is not a domain like 'example.com'")
            out.append(d)
        return out


BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


class WorkersConfig(_Model):
    """Celery workers (`bridge worker` / `bridge beat`, the optional clearhours[celery] extra)."""

    broker_url: str | None = Field(None, description="redis://HOST:6379/0 or amqp://USER@HOST:5672/VHOST; the password goes in broker_password_env.")
    broker_password_env: str | None = Field(None, description="Env var holding the broker password, if it needs one.")
    queue: str = Field("clearhours", description="The queue the tasks go through; one per deployment.")
    concurrency: int = Field(4, ge=1, le=64, description="Tasks one `bridge worker` runs at once (threads: syncs wait on HTTP).")
    visibility_timeout: str = Field("10m", description="Redis: a task whose worker vanished goes to another worker after this long.")

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"is not a URL: {exc}") from None
        if parts.scheme not in BROKER_SCHEMES:
            raise ValueError(f"scheme {parts.scheme or '(none)'!r} is not one of {', '.join(BROKER_SCHEMES)} "
                             "(Redis: redis://127.0.0.1:6379/0, RabbitMQ: amqp://guest@127.0.0.1:5672//)")
        if not parts.hostname:
            raise ValueError("names no host, e.g. redis://127.0.0.1:6379/0")
        if parts.password:
            # never echo the URL: it holds the secret
            raise ValueError("holds a password; secrets never go in the file: remove it from the URL and "
                             "name an environment variable in broker_password_env")
        return v

    @field_validator("visibility_timeout")
    @classmethod
    def _visibility(cls, v: str) -> str:
        if parse_duration(v).total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return v

    def url(self) -> str:
        """The broker URL with the password from the environment (for the Celery app only)."""
        from urllib.parse import quote, urlsplit, urlunsplit

        if not self.broker_url:
            raise ConfigError("workers.broker_url is not set; `bridge worker` and `bridge beat` need a Redis or "
                              "RabbitMQ URL (see config/bridge.example.toml)")
        if not self.broker_password_env:
            return self.broker_url
        password = os.environ.get(self.broker_password_env)
        if not password:
            raise ConfigError(f"workers: environment variable {self.broker_password_env} (from broker_password_env) "
                              "is not set or empty")
        parts = urlsplit(self.broker_url)
        user = quote(parts.username or "", safe="")
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Config(_Model):
    store: StoreConfig = Field(default_factory=StoreConfig)
    agency: AgencyConfig = Field(default_factory=AgencyConfig)
    sources: list[SourceConfig] = Field(default_factory=list)
    clients: list[ClientConfig] = Field(default_factory=list)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    redact: RedactConfig = Field(default_factory=RedactConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    stale_after: str = Field("1h", description="`bridge status` exits 1 when a source has not synced for this long.")

    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _cross(self) -> "Config":
        names = [s.name for s in self.sources]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(sorted(dupes))}")
        keys = [c.key for c in self.clients]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            raise ValueError(f"client keys must be unique; repeated: {', '.join(sorted(dupes))}")
        for i, c in enumerate(self.clients):
            for src in c.sources:
                if src not in names:
                    raise ValueError(f"clients[{i}].sources: {src!r} is not a configured source ({', '.join(names) or 'none'})")
        return self

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named {name!r}; configured: {', '.join(s.name for s in self.sources) or 'none'}")

    def client(self, key: str) -> ClientConfig:
        for c in self.clients:
            if c.key == key:
                return c
        raise ConfigError(f"no client {key!r}; configured: {', '.join(c.key for c in self.clients) or 'none'}")

    def locale_of(self, client: ClientConfig) -> str:
        """The client's own locale, else the agency's."""
        return client.locale or self.agency.locale


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def format_validation_error(origin: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        msg = err["msg"]
        msg = msg.removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against config/bridge.example.toml)"
        where = _loc(err["loc"])
        lines.append(f"{origin}: {where}: {msg}" if where else f"{origin}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], origin: str = "<config>") -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(origin, exc)) from None
    return cfg


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML config file; every error names the file and the key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: no such config file; copy config/bridge.example.toml to start, or run `bridge demo`"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a folder, not a config file; pass the TOML file itself, e.g. -c {p / 'bridge.toml'}") from None
    except PermissionError:
        raise ConfigError(f"{p}: cannot be read by this user (permission denied); fix its permissions or run as its owner") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: is not UTF-8 text (byte {exc.start} cannot be read); save it as UTF-8, which TOML requires"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot be read ({exc.strerror or type(exc).__name__}); check the path") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    cfg = parse_config(data, str(p))
    cfg.path = p
    from bridge.paths import resolve_paths

    resolve_paths(cfg, p.parent)  # relative paths mean "next to the config file" (bridge/paths.py)
    return cfg
