"""Sync N time entries from the sandbox and report throughput, requests and memory.

    python benchmarks/sync_bench.py --entries 200000 [--provider harvest] [--database-url URL]

Prints a human table, then as its last line one JSON object: entries, seconds,
records_per_s, requests, min_requests, incremental_requests, min_incremental_requests,
reconcile_requests, peak_rss_mb. The sandbox runs in a child process with its rate
limiter off; on a small machine it competes with the bridge for cores, so the bridge's
own CPU time is reported too (bridge_cpu_records_per_s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import SandboxProcess, peak_rss_mb, table, timer  # noqa: E402
from bridge.config import parse_config  # noqa: E402
from bridge.connector import Context  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.sync import sync_source  # noqa: E402
from connectors import build_connector  # noqa: E402
from connectors.sandbox.demo import source_block  # noqa: E402

# Reference endpoints a resource reads besides its own path: Productive keeps budgets in
# deals, which the projects resource lists first (one page of reference data).
EXTRA_REFERENCE_PAGES = {"productive": 1}

PROVIDER_PREFIX = {"harvest": "/harvest/v2", "freshbooks": "/freshbooks", "productive": "/productive/api/v2"}


def _page_size(connector: object) -> int:
    return int(getattr(connector, "PAGE_SIZE", None) or getattr(sys.modules[type(connector).__module__], "PAGE_SIZE", 0) or 100)


def _minimum(store: Store, connector: object, source: str, entries: int, changed: int | None) -> int:
    """Fewest requests that could fetch this: full pages of entries, one request per page of other data.

    For an incremental run (`changed` given), every other resource costs its one request.
    A child resource (invoice payments) costs one request per parent that can have children.
    """
    size = _page_size(connector)
    resources = connector.resources  # type: ignore[attr-defined]
    counts = store.counts(source)
    total = EXTRA_REFERENCE_PAGES.get(connector.kind, 0)  # type: ignore[attr-defined]
    for res in resources.values():
        if res.name == "time_entries":
            total += max(1, math.ceil((changed if changed is not None else entries) / size))
        elif res.parent:
            if changed is None:
                parent = resources[res.parent]
                rows = store.changed_rows(source, parent.model, None)
                total += sum(1 for r in rows if res.parent_filter is None or res.parent_filter(r))
        else:
            model_count = counts.get(res.model.resource, 0)
            total += 1 if changed is not None else max(1, math.ceil(model_count / size))
    return total


def _fresh_schema(url: str) -> tuple[str, str]:
    """A throwaway schema, so the benchmark neither reads nor leaves rows in the database's own."""
    import uuid

    import sqlalchemy as sa

    schema = "bench_" + uuid.uuid4().hex[:10]
    engine = sa.create_engine(Store(url).url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", schema


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(Store(url).url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _throttled(sandbox: SandboxProcess, provider: str) -> int:
    """429s the sandbox's rate limiter answered (its counters reset with /reset)."""
    return sum(v for k, v in sandbox.counters()["statuses"].get(provider, {}).items() if k == "429")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=20000)
    ap.add_argument("--provider", default="harvest", choices=sorted(PROVIDER_PREFIX))
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file in a temp dir")
    ap.add_argument("--edit-percent", type=float, default=1.0)
    ap.add_argument("--rate-limits", action="store_true",
                    help="keep the sandbox's rate limiter at the provider's documented limits and count its 429s")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="clearhours-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    schema = None
    if url.startswith("postgres"):
        url, schema = _fresh_schema(url)
    with SandboxProcess(args.entries, rate_limits=args.rate_limits) as sandbox:
        block, env = source_block(args.provider, sandbox.base_url + PROVIDER_PREFIX[args.provider])
        os.environ.update(env)
        if not args.rate_limits:
            # local throughput: lift the connector's client-side limiter along with the server's
            block.update(requests_per_window=1_000_000, window_seconds=1)
        cfg = parse_config({"sources": [block]})
        src = cfg.sources[0]
        store = Store(url)
        store.migrate()
        ctx = Context(source=src.name, tz=cfg.agency.zone)

        cpu_used: list[float] = []

        def run(reconcile: bool = False):  # type: ignore[no-untyped-def]
            conn = build_connector(src, tz=cfg.agency.zone, store=store)
            try:
                start, cpu = timer(), time.process_time()
                rep = sync_source(conn, store, src, ctx=ctx, reconcile=reconcile)
                cpu_used.append(time.process_time() - cpu)
                return rep, timer() - start, conn
            finally:
                conn.close()

        # The fetch is timed on its own; the deletion check (which lists the reconcile
        # window's ids again) runs next and is reported apart, as the issue asks.
        first, seconds, conn = run()
        if first.status != "ok":
            raise SystemExit(f"first sync failed: {first.error}")
        records = first.new + first.updated + first.unchanged
        fetch_requests = first.requests
        minimum = _minimum(store, conn, src.name, args.entries, None)
        check, check_seconds, _ = run(reconcile=True)
        reconcile_requests = check.reconcile_requests

        changed = max(1, int(args.entries * args.edit_percent / 100))
        edited = sandbox.admin.post("/entries/edit_spread", json={"count": changed}).json()["edited"]
        throttled = _throttled(sandbox, args.provider)
        sandbox.admin.post("/reset")
        second, seconds2, conn2 = run()
        by_path: dict[str, int] = {}
        for r in sandbox.admin.get("/log").json()["requests"]:
            if "/_sandbox" in r["path"]:
                continue
            kind = "incremental" if "updated" in (r.get("query") or "") else "other"
            key = f'{r["path"].rsplit("/", 1)[-1]}:{kind}'
            by_path[key] = by_path.get(key, 0) + 1
        incremental = second.requests
        min_incremental = _minimum(store, conn2, src.name, args.entries, edited)
        live = store.counts(src.name)["time_entries"]
        store.close()
        throttled += _throttled(sandbox, args.provider)

    result = {
        "provider": args.provider,
        "entries": args.entries,
        "stored_entries": live,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds, 1),
        # the bridge's own cost, apart from the sandbox sharing this machine's cores
        "bridge_cpu_seconds": round(cpu_used[0], 2),
        "bridge_cpu_records_per_s": round(records / cpu_used[0], 1),
        "requests": fetch_requests,
        "min_requests": minimum,
        "incremental_changed": edited,
        "incremental_updated": second.updated,
        "incremental_requests": incremental,
        "min_incremental_requests": min_incremental,
        "incremental_seconds": round(seconds2, 2),
        "incremental_requests_by_path": by_path,
        "reconcile_requests": reconcile_requests,
        "reconcile_seconds": round(check_seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "database": "postgresql" if url.startswith("postgres") else "sqlite",
        "rate_limits": args.rate_limits,
        "throttled_429": throttled,
    }
    if schema:
        _drop_schema(args.database_url, schema)
    print(table([(k, v) for k, v in result.items()]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
