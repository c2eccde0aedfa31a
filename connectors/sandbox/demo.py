"""A ready-made configuration for the sandbox: what `bridge demo` and the benchmarks sync.

It reads only the sandbox's own published facts (mounted providers, their demo
credentials, the agency's clients), never connector code.
"""

from __future__ import annotations

import importlib
import unicodedata
from typing import Any

from connectors.sandbox import DEMO_CREDENTIALS, Sandbox
from connectors.sandbox.agency import Agency


def source_block(provider: str, base_url: str, name: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """One [[sources]] table for a sandbox provider, and the env vars holding its secrets.

    DEMO_CREDENTIALS pairs each secret `x` with `x_env`, the variable name to put it in;
    every other key (account_id, organization_id, …) is a plain config value.
    """
    creds = DEMO_CREDENTIALS[provider]
    block: dict[str, Any] = {"name": name or provider, "kind": provider, "base_url": base_url}
    env: dict[str, str] = {}
    for key, value in creds.items():
        if key.endswith("_env"):
            block[key] = value
            env[value] = creds[key[: -len("_env")]]
        elif f"{key}_env" not in creds:
            block[key] = value
    return block, env


def client_id(provider: str, agency_client_id: int) -> str:
    """The id a provider module serves for an agency client (most serve the neutral id)."""
    module = importlib.import_module(f"connectors.sandbox.{provider}")
    mapper = getattr(module, "client_external_id", None)
    return str(mapper(agency_client_id) if mapper else agency_client_id)


def _slug(name: str) -> str:
    name = "".join(ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch))
    out = "".join(ch.lower() if ch.isascii() and ch.isalnum() else "-" for ch in name)
    return "-".join(p for p in out.split("-") if p)[:40] or "client"


def demo_config(sandbox: Sandbox, *, store_url: str, target: str, providers: list[str] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The whole demo config (as TOML-ready data) and the env vars it needs.

    Each active client becomes one portal. When every provider serves its own account, a
    client tracked in two trackers (under different ids) is one portal combining both, as
    an agency would configure it. When all serve one shared agency, combining would count
    every hour three times, so each portal then reads from one provider, rotating. The
    visibility policy differs per client so the demo shows the range: most private, first
    names with detailed notes, and weekly summaries.
    """
    agency: Agency = sandbox.agency
    mounted = [m.name for m in sandbox.mounts if m.name in DEMO_CREDENTIALS]
    if providers:
        mounted = [p for p in mounted if p in providers]
    sources, env = [], {}
    for provider in mounted:
        block, secrets = source_block(provider, sandbox.url(provider))
        block["every"] = "1m"
        sources.append(block)
        env.update(secrets)
    policies = [
        {"team_names": "first_name", "descriptions": "detailed", "invoices": "shown", "non_billable": "shown", "view": "realtime"},
        {"team_names": "anonymous", "descriptions": "summary", "invoices": "shown", "view": "realtime"},
        {"team_names": "role", "descriptions": "hidden", "invoices": "hidden", "view": "weekly"},
    ]
    # (name, email) -> {provider: [ids]}, in the order clients first appear
    portals: dict[str, dict[str, Any]] = {}
    if sandbox.shared:
        active = [c for c in sorted(agency.clients.values(), key=lambda c: c.id) if c.is_active]
        for i, c in enumerate(active):
            provider = mounted[i % len(mounted)]
            portals[c.name] = {"email": c.email, "sources": {provider: [client_id(provider, c.id)]}}
    else:
        for provider in mounted:
            account = sandbox.agency_for(provider)
            for c in sorted(account.clients.values(), key=lambda c: c.name):
                if c.is_active:
                    entry = portals.setdefault(c.name, {"email": c.email, "sources": {}})
                    entry["sources"].setdefault(provider, []).append(str(c.id))
    clients = []
    for i, (name, found) in enumerate(portals.items()):
        clients.append({
            "key": _slug(name),
            "name": name,
            "sources": found["sources"],
            "contacts": [found["email"]],
            "notes": "Figures update every few minutes from our time trackers. Ask us about anything that looks off.",
            "glossary": {"PM": "Project management: planning, calls and coordination.", "DEV": "Development: building and testing."},
            "visibility": {**policies[i % len(policies)], "internal_tasks": ["Internal Meeting"]},
            "locale": _locale_for(name),
        })
    config = {
        "store": {"url": store_url},
        "agency": {"name": "Martin Digital Studio", "timezone": agency.timezone, "contact": "Alice Martin <alice@martin.example>",
                   "email": "ops@martin.example"},
        "sources": sources,
        "clients": clients,
        "publish": {"target": target},
    }
    return config, env


def _locale_for(name: str) -> str:
    """The demo's clients read their own language: a GmbH German, an AG Swiss German
    formats, a SA/SARL French; everyone else English."""
    if name.endswith(" GmbH"):
        return "de"
    if name.endswith(" AG"):
        return "de_CH"
    if name.endswith((" SA", " SARL", " SAS")):
        return "fr"
    return "en"


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the demo config (tomllib reads but does not write)."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{value(k) if not k.isidentifier() else k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    def table(prefix: str, d: dict[str, Any], array: bool = False) -> None:
        lines.append(f"[[{prefix}]]" if array else f"[{prefix}]")
        nested = {}
        for k, v in d.items():
            if isinstance(v, dict) and k in ("visibility", "glossary"):
                nested[k] = v
            else:
                lines.append(f"{k} = {value(v)}")
        for k, v in nested.items():
            lines.append(f"[{prefix}.{k}]")
            for kk, vv in v.items():
                lines.append(f"{value(kk) if not kk.isidentifier() else kk} = {value(vv)}")
        lines.append("")

    for key, v in data.items():
        if isinstance(v, list):
            for item in v:
                table(key, item, array=True)
        elif isinstance(v, dict):
            table(key, v)
        else:
            lines.insert(0, f"{key} = {value(v)}")
    return "\n".join(lines)
