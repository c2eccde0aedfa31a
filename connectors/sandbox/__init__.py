"""A local server that speaks the providers' APIs in their real wire shapes.

It serves a generated, provider-neutral agency through one module per provider: by default each
provider serves that agency's own account in it (`agency.generate_accounts`: different clients,
some clients in two trackers under different ids), or, with one `Agency` (`generate_agency`),
every provider serves the same data under the same ids (the connector contract tests). It powers `bridge demo`, end-to-end tests and benchmarks. It shares no parsing or model
code with `connectors/*.py` or `bridge/normalize.py`: if it did, the end-to-end tests would only
prove that the code agrees with itself.

Using it::

    from connectors.sandbox import Sandbox, generate_agency
    with Sandbox(generate_agency(seed=7, today=date(2025, 3, 20)), rate_limits=False) as sandbox:
        base = sandbox.url("harvest")          # http://127.0.0.1:PORT/harvest/v2
        sandbox.inject("harvest", "503", count=2, path_contains="/time_entries")
        sandbox.agency.edit_entry(entry_id, notes="changed")   # updated_at moves to agency.now()

From another process, the same is available as JSON under `http://127.0.0.1:PORT/_sandbox/`
(`server.ADMIN_HELP`, also printed by `bridge sandbox --help`).

Writing a provider module (the plug-in contract)
------------------------------------------------
A provider is a plain module `connectors/sandbox/<name>.py` with:

``NAME: str``
    The provider key, e.g. ``"freshbooks"``; also the key in ``DEMO_CREDENTIALS`` and in the
    Sandbox's ``options`` / ``rate_rules`` mappings and its counters.
``PREFIX: str``
    Where it is mounted, e.g. ``"/freshbooks"`` or ``"/productive/api/v2"``. Requests under it are
    routed to the module with ``request.path`` made relative to the prefix (``/time_entries``).
    The connector's ``base_url`` is ``sandbox.url(NAME)`` = ``http://127.0.0.1:PORT`` + PREFIX.
``RATE_LIMITS: list[server.RateRule]``
    The provider's documented limits, e.g. ``[RateRule(100, 15.0), RateRule(100, 900.0, "/reports/")]``:
    a rule with ``path_prefix`` counts only those paths (relative to PREFIX); the rule without one
    counts all others. The server enforces them (unless ``rate_limits=False``) and answers 429.
``make_state(agency, **options) -> Any`` (optional)
    Called once per Sandbox with ``Sandbox(options={NAME: {...}})``; returns whatever the module
    wants to keep: credentials, flags (e.g. cursor paging), issued OAuth tokens, page caches.
``handle(request, agency, state) -> server.Response``
    Serves one request. The usual shape is a ``server.Router`` route table
    (``@ROUTES.get(r"/clients/(?P<id>\\d+)")``, handlers ``fn(request, agency, state, **groups)``)
    and ``handle = ROUTES.handle``. Auth is checked here, in the provider's own way and error
    bodies. It runs while holding ``agency.lock``, so it sees a consistent dataset; it must not
    sleep. Return ``server.json_response(body, status, headers)``; convert Decimals to the wire
    type yourself (Harvest: float; FreshBooks: ``"1222.00"`` strings) and build absolute links
    from ``request.api_url`` (taken from the request's Host header).
``too_many_requests(retry_after: int | None) -> Response`` (optional)
    The provider's 429 body; ``retry_after`` is None for the "429-no-retry-after" fault.

Then add the module name to ``PROVIDERS`` below and its demo credentials to ``DEMO_CREDENTIALS``.

What a provider module reads from the agency (`agency.Agency`):
    ``clients``, ``people``, ``tasks``, ``projects``, ``invoices`` (dicts by neutral id; dataclasses
    with Decimal money and aware-UTC datetimes), ``entries`` (``Entry`` named tuples; timestamps
    are epoch seconds, convert with ``agency.from_epoch``; ``seconds`` is whole minutes),
    ``entries_by_date_desc()`` and ``entry_ids_updated_since(dt)`` (indexes rebuilt once per
    ``agency.version``, which every mutation bumps: key your caches on it), ``today``,
    ``timezone``, ``owner`` (the admin who holds the demo token), ``malformed`` (entry id ->
    "bad_date" | "bad_duration": render that entry invalidly in your own format), and
    ``agency.now()``, the one clock (injectable via ``generate_agency(clock=...)``), never
    earlier than any timestamp already handed out.
Deletions: ``agency.delete_entry(id)`` hard-deletes (Harvest has no tombstones) and appends a
    ``Deletion(resource="time_entry", id, deleted_at, record)`` to ``agency.deletions``, in order.
    FreshBooks can expose them as ``vis_state=1`` entries, Productive as ``/activities`` destroy
    events or ``/deleted_items``, each from that log.
Invoice status: ``invoice.state`` is draft|open|paid|void; ``invoice.status(agency.today)`` adds
    partial and overdue as seen from amounts and dates.
"""

from __future__ import annotations

import importlib
from datetime import date
from types import ModuleType
from typing import Any

from connectors.sandbox.agency import Agency, generate_accounts, generate_agency
from connectors.sandbox.server import FAULT_KINDS, RateRule, Request, Response, Router, Sandbox, json_response

# Provider modules mounted by default, in this order. A module that does not exist yet is skipped,
# so each provider can land on its own.
PROVIDERS = ("harvest", "freshbooks", "productive")

HARVEST_TOKEN = "sandbox-harvest-token"
HARVEST_ACCOUNT_ID = "100001"
PRODUCTIVE_TOKEN = "sandbox-productive-token"
PRODUCTIVE_ORGANIZATION_ID = "200001"

# FreshBooks OAuth: the first refresh token is single use; each refresh hands out the next one.
FRESHBOOKS_CLIENT_ID = "sandbox-freshbooks-client-id"
FRESHBOOKS_CLIENT_SECRET = "sandbox-freshbooks-client-secret"
FRESHBOOKS_REFRESH_TOKEN = "fbrt-first-sandbox-refresh-token"
FRESHBOOKS_ACCOUNT_ID = "NwD7q2"
FRESHBOOKS_BUSINESS_ID = "8801001"

# Per provider: the values a demo config needs, and the env vars `bridge demo` should set.
DEMO_CREDENTIALS: dict[str, dict[str, str]] = {
    "harvest": {
        "account_id": HARVEST_ACCOUNT_ID,
        "token": HARVEST_TOKEN,
        "token_env": "HARVEST_TOKEN",
    },
    "freshbooks": {
        "account_id": FRESHBOOKS_ACCOUNT_ID,
        "business_id": FRESHBOOKS_BUSINESS_ID,
        "client_id": FRESHBOOKS_CLIENT_ID,
        "client_id_env": "FRESHBOOKS_CLIENT_ID",
        "client_secret": FRESHBOOKS_CLIENT_SECRET,
        "client_secret_env": "FRESHBOOKS_CLIENT_SECRET",
        "refresh_token": FRESHBOOKS_REFRESH_TOKEN,
        "refresh_token_env": "FRESHBOOKS_REFRESH_TOKEN",
    },
    "productive": {
        "organization_id": PRODUCTIVE_ORGANIZATION_ID,
        "token": PRODUCTIVE_TOKEN,
        "token_env": "PRODUCTIVE_TOKEN",
    },
}


def provider_modules() -> list[ModuleType]:
    modules = []
    for name in PROVIDERS:
        try:
            modules.append(importlib.import_module(f"connectors.sandbox.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"connectors.sandbox.{name}":
                raise
    return modules


def start_sandbox(
    *, seed: int = 1, entries: int = 1500, port: int = 0, rate_limits: bool = True, today: date | None = None,
    shared: bool = False, **options: Any,
) -> Sandbox:
    """Generate an agency and start a sandbox on 127.0.0.1 serving it (the `bridge sandbox` body).

    Each provider serves its own account of the agency, `entries` time entries each; with
    `shared`, all of them serve one agency under the same ids."""
    data = generate_agency(seed=seed, today=today, entries=entries) if shared else \
        generate_accounts(seed=seed, today=today, entries=entries, providers=[m.NAME for m in provider_modules()])
    sandbox = Sandbox(data, rate_limits=rate_limits, port=port, **options)
    sandbox.start()
    return sandbox


def describe(sandbox: Sandbox) -> list[str]:
    """Human lines for `bridge sandbox`: each provider's base URL and demo credentials."""
    lines = [f"Sandbox running at {sandbox.base_url} (admin API: {sandbox.base_url}/_sandbox/info)"]
    lines.append("  every provider serves the same agency (same client ids)" if sandbox.shared else
                 "  each provider serves its own account of the agency (`bridge discover` lists the clients)")
    for mounted in sandbox.mounts:
        lines.append(f"  {mounted.name}: base_url = {sandbox.url(mounted.name)}")
        creds = DEMO_CREDENTIALS.get(mounted.name, {})
        for key, value in creds.items():
            if key.endswith("_env"):
                secret_key = key[: -len("_env")]
                if secret_key in creds:
                    lines.append(f"    export {value}={creds[secret_key]}")
            elif f"{key}_env" not in creds:
                lines.append(f"    {key} = {value}")
        if mounted.name == "freshbooks":
            lines.append("    (or, instead of the refresh token, `bridge auth freshbooks`: the sandbox's "
                         "authorize page approves at once)")
    return lines


__all__ = [
    "Agency", "DEMO_CREDENTIALS", "FAULT_KINDS", "HARVEST_ACCOUNT_ID", "HARVEST_TOKEN", "PROVIDERS", "RateRule",
    "Request", "Response", "Router", "Sandbox", "describe", "start_sandbox", "generate_accounts", "generate_agency", "json_response", "provider_modules",
]
