"""`bridge init`: a commented bridge.toml from a few answers, with no secret in it.

The answers name the *environment variables* that will hold each credential, never the
credentials: a value that looks like a token where a variable name belongs is refused.
Clients come later, from `bridge discover --toml`, once the sources answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.config import KINDS, parse_config
from bridge.errors import ConfigError

ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")

# What each kind needs: (config key, question, default) for plain values, and env var names.
PLAIN = {
    "harvest": [("account_id", "Harvest account id (Harvest ID > Developers, next to your token)", None)],
    "freshbooks": [("redirect_uri", "Redirect URI registered in your FreshBooks app (see docs/freshbooks.md)",
                    "http://127.0.0.1:8976/freshbooks/callback")],
    "productive": [("organization_id", "Productive organization id (Settings > API integrations)", None)],
}
SECRETS = {
    "harvest": [("token_env", "HARVEST_TOKEN", "personal access token")],
    "freshbooks": [("client_id_env", "FRESHBOOKS_CLIENT_ID", "OAuth app client id"),
                   ("client_secret_env", "FRESHBOOKS_CLIENT_SECRET", "OAuth app client secret")],
    "productive": [("token_env", "PRODUCTIVE_TOKEN", "API token")],
}
GUIDES = {"harvest": "docs/harvest.md", "freshbooks": "docs/freshbooks.md", "productive": "docs/productive.md"}


@dataclass
class SourceAnswer:
    kind: str
    name: str
    values: dict[str, str] = field(default_factory=dict)  # account ids, redirect_uri, base_url
    env: dict[str, str] = field(default_factory=dict)  # token_env -> HARVEST_TOKEN, …


@dataclass
class Answers:
    agency: str
    timezone: str = "UTC"
    store: str = "sqlite:///clearhours.db"
    target: str = "file://./site"
    contact: str | None = None
    sources: list[SourceAnswer] = field(default_factory=list)


def check_env_name(value: str, what: str) -> str:
    """A variable NAME like HARVEST_TOKEN; anything else (a pasted token) is refused unechoed."""
    if not ENV_NAME.fullmatch(value or ""):
        raise ConfigError(f"{what} must be the NAME of an environment variable, like HARVEST_TOKEN (upper-case "
                          "letters, digits, '_'); the secret itself goes into that variable, never into the file")
    return value


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{value!r} is not an IANA time zone such as 'Europe/Berlin'") from None
    return value


def source_answer(kind: str, name: str | None = None, values: dict[str, str | None] | None = None,
                  env: dict[str, str | None] | None = None) -> SourceAnswer:
    """One source with its defaults filled in and every env var name checked."""
    if kind not in KINDS:
        raise ConfigError(f"source kind {kind!r} is not one of {', '.join(KINDS)}")
    ans = SourceAnswer(kind, name or kind)
    for key, _, default in PLAIN[kind]:
        value = (values or {}).get(key) or default
        if value:
            ans.values[key] = value
    if (values or {}).get("base_url"):
        ans.values["base_url"] = str((values or {})["base_url"])
    for key, default, what in SECRETS[kind]:
        ans.env[key] = check_env_name((env or {}).get(key) or default, f"{ans.name}: {key} ({what})")
    return ans


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(a: Answers) -> str:
    """The commented TOML; parsed back before it is written, so it is always valid."""
    out = [
        "# clearhours bridge configuration, written by `bridge init`.",
        "# Every key is explained in config/bridge.example.toml. Secrets never go in this file:",
        "# each source names the environment variables that hold them.",
        "# Relative paths (the store, a file:// target) are relative to this file's folder.",
        "",
        "[store]",
        "# SQLite here; PostgreSQL in production: \"postgresql://user@host:5432/clearhours\".",
        f"url = {_q(a.store)}",
        "",
        "[agency]",
        "# Shown on every portal.",
        f"name = {_q(a.agency)}",
        "# Days, weeks and month resets are counted in this zone.",
        f"timezone = {_q(a.timezone)}",
    ]
    if a.contact:
        out += ["# Whom clients should ask about their portal.", f"contact = {_q(a.contact)}"]
    for s in a.sources:
        out += ["", f"# {s.kind}: how to get the credentials and ids: {GUIDES[s.kind]}", "[[sources]]",
                f"name = {_q(s.name)}", f"kind = {_q(s.kind)}"]
        if "base_url" in s.values:
            out.append(f"base_url = {_q(s.values['base_url'])}")
        for key, question, _ in PLAIN[s.kind]:
            if key in s.values:
                out += [f"# {question}", f"{key} = {_q(s.values[key])}"]
        for key, _, what in SECRETS[s.kind]:
            out += [f"# NAME of the environment variable holding the {what}", f"{key} = {_q(s.env[key])}"]
        if s.kind == "freshbooks":
            out.append(f"# Tokens come from `bridge auth {s.name}` and live in the store.")
        if s.kind == "productive":
            out += ["# Productive sends money in minor units (cents).", "money_scale = 100"]
    out += [
        "",
        "# ---- Clients: paste the blocks `bridge discover --toml` prints ----",
        "",
        "[publish]",
        "# file://DIR (a folder) or s3://bucket/prefix (see docs/s3-cloudfront.md).",
        f"target = {_q(a.target)}",
        "",
        "# Mail is off until [smtp] host is set; `bridge mail --test ADDRESS` checks it.",
        "# [smtp]",
        "# host = \"smtp.example.net\"",
        "# port = 587",
        "# security = \"starttls\"",
        "# user_env = \"SMTP_USER\"",
        "# password_env = \"SMTP_PASSWORD\"",
        "",
    ]
    text = "\n".join(out)
    import tomllib

    parse_config(tomllib.loads(text), "bridge init")  # never write a file the bridge would refuse
    return text


def write(path: Path, text: str, *, force: bool = False) -> None:
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; choose another path with -c, or pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def next_steps(a: Answers, path: Path) -> list[str]:
    cfg = "" if str(path) == "bridge.toml" else f" -c {path}"
    steps: list[tuple[str, str]] = []
    for s in a.sources:
        for key, _, what in SECRETS[s.kind]:
            steps.append((f"export {s.env[key]}=…", f"{s.name}: {what} ({GUIDES[s.kind]})"))
    for s in a.sources:
        if s.kind == "freshbooks":
            steps.append((f"bridge{cfg} auth {s.name}", "authorize in the browser; tokens go to the store"))
    steps += [(f"bridge{cfg} check", "credentials and account ids"),
              (f"bridge{cfg} discover --toml >> {path}", "one [[clients]] block per client; add contacts"),
              (f"bridge{cfg} sync && bridge{cfg} publish", "then `bridge run` as a service (docs/service.md)")]
    out = ["Next steps:"]
    for cmd, why in steps:
        out += [f"  # {why}", f"  {cmd}"]
    return out
