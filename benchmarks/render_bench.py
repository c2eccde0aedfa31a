"""Render many client portals (HTML + CSV + XLSX + PDF) from a large store.

    python benchmarks/render_bench.py [--clients 500] [--entries 1000000] [--big 20000]

Builds a SQLite store with `--entries` time entries over `--clients` clients (the first
client has `--big` entries, the rest share the remainder), then builds each client's
PortalView and renders it. Prints a table and, as the last line, one JSON object:
clients, entries, seconds, ms_per_portal_p50, ms_per_portal_max, big_client_seconds,
largest_html_bytes, largest_html_gzip_bytes, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import statistics
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from benchmarks._common import peak_rss_mb, table, timer  # noqa: E402
from bridge.config import parse_config  # noqa: E402
from bridge.models import Client, Person, Project, Task, TimeEntry  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.views import build_portal_view  # noqa: E402
from publishers.render import render_portal  # noqa: E402

NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)
SRC = "bench"
TASKS = ["Design", "Development", "Project Management", "QA & Testing", "Content", "Internal Meeting"]
NOTES = ["Sprint planning", "Homepage layout", "Bug fixes in checkout", "Client call", "Deploy to staging",
         "Copy edits", "Accessibility audit", "Performance tuning", None]


def build_store(url: str, clients: int, entries: int, big: int) -> None:
    store = Store(url)
    store.migrate()
    rng = random.Random(7)
    now = NOW
    with store.engine.begin() as conn:
        conn.execute(sa.insert(Client.__table__), [
            {"source": SRC, "source_id": str(c), "name": f"Client {c:03d} GmbH", "currency": "EUR", "is_active": True,
             "updated_at": now, "synced_at": now, "is_deleted": False} for c in range(clients)])
        conn.execute(sa.insert(Person.__table__), [
            {"source": SRC, "source_id": str(p), "first_name": f"First{p}", "last_name": f"Last{p}",
             "email": f"p{p}@agency.example", "role": "Developer", "is_active": True, "is_contractor": False,
             "default_hourly_rate": Decimal("120.00"), "cost_rate": Decimal("61.00"), "updated_at": now,
             "synced_at": now, "is_deleted": False} for p in range(20)])
        conn.execute(sa.insert(Task.__table__), [
            {"source": SRC, "source_id": str(t), "name": n, "is_billable_default": n != "Internal Meeting",
             "is_active": True, "updated_at": now, "synced_at": now, "is_deleted": False} for t, n in enumerate(TASKS)])
        projects = []
        for c in range(clients):
            for k in range(2):
                projects.append({
                    "source": SRC, "source_id": f"{c}-{k}", "client_source_id": str(c), "name": f"Project {c}-{k}",
                    "is_active": True, "is_billable": True, "currency": "EUR",
                    "budget_kind": "hours" if k == 0 else "money", "budget_period": "total" if k == 0 else "monthly",
                    "budget_seconds": 2000 * 3600 if k == 0 else None,
                    "budget_money": Decimal("20000") if k == 1 else None, "budget_visible": True,
                    "starts_on": dt.date(2024, 1, 1), "ends_on": dt.date(2025, 12, 31), "hourly_rate": Decimal("130.00"),
                    "updated_at": now, "synced_at": now, "is_deleted": False})
        conn.execute(sa.insert(Project.__table__), projects)
    rest = max(entries - big, 0)
    per_client = [big] + [rest // max(clients - 1, 1)] * (clients - 1)
    batch: list[dict] = []
    eid = 0
    start = dt.date(2024, 3, 20)
    with store.engine.begin() as conn:
        for c, n in enumerate(per_client):
            for _ in range(n):
                eid += 1
                task = rng.randrange(len(TASKS))
                billable = TASKS[task] != "Internal Meeting"
                seconds = rng.choice((900, 1800, 2700, 3600, 5400, 7200))
                batch.append({
                    "source": SRC, "source_id": str(eid), "client_source_id": str(c), "project_source_id": f"{c}-{eid % 2}",
                    "person_source_id": str(rng.randrange(20)), "task_source_id": str(task),
                    "spent_date": start + dt.timedelta(days=rng.randrange(366)), "seconds": seconds,
                    "is_billable": billable, "is_running": False, "is_invoiced": rng.random() < 0.6, "is_approved": True,
                    "notes": rng.choice(NOTES), "billable_rate": Decimal("130.00") if billable else None,
                    "cost_rate": Decimal("61.00"),
                    "billable_amount": (Decimal(seconds) / 3600 * 130).quantize(Decimal("0.01")) if billable else None,
                    "currency": "EUR", "updated_at": now, "synced_at": now, "is_deleted": False,
                })
                if len(batch) == 20000:
                    conn.execute(sa.insert(TimeEntry.__table__), batch)
                    batch.clear()
        if batch:
            conn.execute(sa.insert(TimeEntry.__table__), batch)
    store.close()


def config(url: str, clients: int):  # type: ignore[no-untyped-def]
    policies = [
        {"rates": "shown", "descriptions": "detailed", "team_names": "full", "non_billable": "shown",
         "invoices": "shown", "view": "realtime"},
        {"descriptions": "summary", "team_names": "anonymous", "view": "realtime"},
        {},  # the defaults: weekly summaries
    ]
    return parse_config({
        "store": {"url": url},
        "agency": {"name": "Bench Agency", "timezone": "Europe/Berlin"},
        "sources": [{"name": SRC, "kind": "harvest"}],
        "clients": [{"key": f"c{c:03d}", "name": f"Client {c:03d} GmbH", "sources": {SRC: [str(c)]},
                     "visibility": {**policies[c % len(policies)], "internal_tasks": ["Internal Meeting"]}}
                    for c in range(clients)],
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--big", type=int, default=20_000, help="entries of the first (largest) client")
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--render", type=int, default=None, help="render only the first N portals (the store is still full size)")
    args = ap.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='clearhours-render-')}/render.db"

    t0 = timer()
    build_store(url, args.clients, args.entries, args.big)
    build_seconds = timer() - t0
    cfg = config(url, args.clients)
    store = Store(url)
    times: list[float] = []
    largest, largest_gz, big_seconds, big_view, big_render = 0, 0, 0.0, 0.0, 0.0
    t0 = timer()
    for i, client in enumerate(cfg.clients[: args.render] if args.render else cfg.clients):
        start = timer()
        view = build_portal_view(store, cfg, client, now=NOW, previous_snapshot=None)
        viewed = timer()
        files = render_portal(view, lambda token, path: path, "token")
        elapsed = timer() - start
        times.append(elapsed)
        if i == 0:
            big_seconds, big_view, big_render = elapsed, viewed - start, timer() - viewed
        page = next(f for f in files if f.path == "index.html").data
        if len(page) > largest:
            largest, largest_gz = len(page), len(gzip.compress(page, 6))
        if (i + 1) % 50 == 0:
            print(f"  rendered {i + 1}/{len(cfg.clients)} portals", file=sys.stderr, flush=True)
    seconds = timer() - t0
    store.close()
    result = {
        "clients": args.clients, "entries": args.entries, "big_client_entries": args.big,
        "store_build_seconds": round(build_seconds, 1), "seconds": round(seconds, 1),
        "ms_per_portal_p50": round(statistics.median(times) * 1000, 1),
        "ms_per_portal_max": round(max(times) * 1000, 1), "big_client_seconds": round(big_seconds, 2),
        "big_client_view_seconds": round(big_view, 2), "big_client_render_seconds": round(big_render, 2),
        "largest_html_bytes": largest, "largest_html_gzip_bytes": largest_gz, "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(table(list(result.items())))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
