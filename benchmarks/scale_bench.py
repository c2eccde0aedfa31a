"""Scale: N sources and M portals on the sandbox, served by 1 and by 3 processes.

Modes (each a fresh SQLite store, or --store-url for PostgreSQL):
  run     `bridge run` x1, then x3 (one leader, two standbys)
  celery  `bridge beat` + `bridge worker` x1, then x3 (needs the celery extra and --broker)

For each it reports, over a steady window:
  syncs_per_source_per_interval  min and max over every (source, interval) slot: must be 1;
                                 the mean, and the shortest pause between two syncs of a source
  duplicate_publishes            publishes of one client less than half an interval apart
                                 (two processes publishing the same change): must be 0
  edit_to_portal p50/p95         an entry edited at the sandbox until its portal shows it
  failover_seconds               (3 processes) kill -9 of the leader (run) or of the worker
                                 that holds a sync (celery), until a sync of that source starts again
  max_gap_after_kill             the longest pause between two syncs of a source across the kill

    .venv/bin/python benchmarks/scale_bench.py --sources 6 --portals 4 --every 3s --window 24
    .venv/bin/python benchmarks/scale_bench.py --mode celery --broker redis://127.0.0.1:6379/0

The last line printed is JSON with every number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.config import parse_duration  # noqa: E402
from bridge.heartbeat import current_leader  # noqa: E402
from bridge.models import AuditEvent, PortalLink, SyncRun, TimeEntry  # noqa: E402
from bridge.store import Store  # noqa: E402
from connectors.sandbox import HARVEST_ACCOUNT_ID, HARVEST_TOKEN, Sandbox, generate_agency  # noqa: E402

UTC = dt.timezone.utc


def _harvest_clients(sb: Any) -> list[str]:
    agency = sb.agency_for("harvest") if hasattr(sb, "agency_for") else sb.agency
    return [str(c) for c in agency.clients]


def _config(path: Path, sb: Any, store_url: str, site: Path, args: argparse.Namespace, queue: str) -> dict[str, tuple[str, str]]:
    """Write the config; returns portal key -> (source, provider client id)."""
    clients = _harvest_clients(sb)
    text = f'[store]\nurl = "{store_url}"\n'
    names = [f"src{i:02d}" for i in range(args.sources)]
    for name in names:
        text += (f'[[sources]]\nname = "{name}"\nkind = "harvest"\nbase_url = "{sb.url("harvest")}"\n'
                 f'account_id = "{HARVEST_ACCOUNT_ID}"\ntoken_env = "HARVEST_TOKEN"\nevery = "{args.every}"\n')
    portals = {}
    for i in range(args.portals):
        key = f"portal{i:02d}"
        source, client = names[i % len(names)], clients[i % len(clients)]
        portals[key] = (source, client)
        text += (f'[[clients]]\nkey = "{key}"\nname = "Portal {i}"\nsources = {{ {source} = ["{client}"] }}\n'
                 '[clients.visibility]\ndescriptions = "detailed"\nview = "realtime"\n')
    text += f'[publish]\ntarget = "file://{site}"\n'
    if args.broker:
        text += f'[workers]\nbroker_url = "{args.broker}"\nqueue = "{queue}"\nconcurrency = 4\nvisibility_timeout = "5s"\n'
    path.write_text(text, encoding="utf-8")
    return portals


def _bridge(cfg: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HARVEST_TOKEN": HARVEST_TOKEN, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bridge", "-c", str(cfg), "-v", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))  # noqa: SIM115


def _wait(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except sa.exc.SQLAlchemyError:
            pass
        time.sleep(0.05)
    return False


def _runs(store: Store) -> list[tuple[str, dt.datetime, str]]:
    t = SyncRun.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(sa.select(t.c.source, t.c.started_at, t.c.status).order_by(t.c.id))]


def _publishes(store: Store) -> list[tuple[str, dt.datetime]]:
    t = AuditEvent.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(
            sa.select(t.c.client_key, t.c.at).where(t.c.action == "publish").order_by(t.c.id))]


def _portal_index(store: Store, key: str) -> Path | None:
    t = PortalLink.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.c.url).where(t.c.client_key == key)).first()
    if row is None or not row[0]:
        return None
    path = Path(unquote(urlsplit(row[0]).path))
    return path if path.suffix else path / "index.html"


def _entries(store: Store, source: str, client: str, n: int) -> list[str]:
    t = TimeEntry.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.source_id).where(t.c.source == source, t.c.client_source_id == client, t.c.is_deleted.is_(False),
                                           t.c.is_running.is_(False), t.c.is_billable.is_(True))
            .order_by(t.c.spent_date.desc(), t.c.source_id).limit(n)).all()
    return [r[0] for r in rows]


def _slots(runs: list[tuple[str, dt.datetime, str]], sources: list[str], start: dt.datetime, end: dt.datetime,
           every: float) -> tuple[int, int, int]:
    """Syncs per (source, interval) slot in [start, end): min, max, slots counted.

    Slots are anchored on each source's own schedule (its first start) and centred on the
    expected start times, so scheduling jitter of a few ms never moves a sync across a slot edge.
    """
    counts: list[int] = []
    for source in sources:
        starts = sorted(at for s, at, _ in runs if s == source)
        if not starts:
            counts.append(0)
            continue
        anchor = starts[0]
        first = int((start - anchor).total_seconds() // every) + 1
        last = int((end - anchor).total_seconds() // every) - 1
        for k in range(first, last + 1):
            lo = anchor + dt.timedelta(seconds=(k - 0.5) * every)
            hi = anchor + dt.timedelta(seconds=(k + 0.5) * every)
            counts.append(sum(1 for at in starts if lo <= at < hi))
    return (min(counts), max(counts), len(counts)) if counts else (0, 0, 0)


def _rate(runs: list[tuple[str, dt.datetime, str]], sources: list[str], start: dt.datetime, end: dt.datetime,
          every: float) -> dict[str, float]:
    """Syncs per interval on average, and the shortest pause between two syncs of one source
    (in intervals): with workers a sync starts when a worker takes it, not on the tick, so
    slots can show 0 and 2 around a late start while the rate stays exactly 1."""
    intervals = (end - start).total_seconds() / every
    mean = statistics.mean(sum(1 for s, at, _ in runs if s == src and start <= at < end) / intervals for src in sources)
    gaps = []
    for src in sources:
        starts = sorted(at for s, at, _ in runs if s == src and start <= at < end)
        gaps += [(b - a).total_seconds() / every for a, b in zip(starts, starts[1:])]
    return {"mean": round(mean, 2), "shortest_gap_in_intervals": round(min(gaps), 2) if gaps else 0.0}


def _duplicates(pubs: list[tuple[str, dt.datetime]], start: dt.datetime, end: dt.datetime, every: float) -> int:
    by: dict[str, list[dt.datetime]] = {}
    for key, at in pubs:
        if start <= at < end:
            by.setdefault(key, []).append(at)
    return sum(1 for ats in by.values() for a, b in zip(ats, ats[1:]) if (b - a).total_seconds() < every / 2)


def scenario(sb: Any, args: argparse.Namespace, mode: str, processes: int, work: Path) -> dict[str, Any]:
    every = parse_duration(args.every).total_seconds()
    here = work / f"{mode}-{processes}"
    here.mkdir()
    store_url = args.store_url or f"sqlite:///{here / 'store.db'}"
    store = Store(store_url)
    store.migrate()
    queue = f"scale-{uuid.uuid4().hex[:8]}"
    cfg = here / "bridge.toml"
    portals = _config(cfg, sb, store.url, here / "site", args, queue)
    sources = sorted({s for s, _ in portals.values()} | {f"src{i:02d}" for i in range(args.sources)})
    procs: list[subprocess.Popen[bytes]] = []
    if mode == "run":
        procs = [_bridge(cfg, here / f"run{i}.log", "run") for i in range(processes)]
    else:
        procs = [_bridge(cfg, here / f"worker{i}.log", "worker") for i in range(processes)]
        procs.append(_bridge(cfg, here / "beat.log", "beat"))
    out: dict[str, Any] = {"mode": mode, "processes": processes}
    try:
        ready = _wait(lambda: all(_portal_index(store, k) for k in portals)
                      and all(any(s == src and st == "ok" for s, _, st in _runs(store)) for src in sources), args.timeout)
        if not ready:
            raise RuntimeError(f"the first syncs and publishes did not finish; see the logs in {here}")
        time.sleep(every)  # past the start-up publishes
        start = dt.datetime.now(UTC)
        edited_key = next(iter(portals))
        src, client = portals[edited_key]
        targets = _entries(store, src, client, args.cycles)
        admin = httpx.Client(base_url=sb.base_url + "/_sandbox", timeout=10)
        latencies = []
        for i, entry_id in enumerate(targets):
            marker = f"scale-{i}-{uuid.uuid4().hex[:10]}"
            admin.patch(f"/entries/{entry_id}", params={"provider": "harvest"}, json={"notes": marker}).raise_for_status()
            t0 = time.monotonic()

            def shows() -> bool:
                p = _portal_index(store, edited_key)
                try:
                    return p is not None and marker in p.read_text(encoding="utf-8")
                except OSError:
                    return False

            if _wait(shows, args.timeout):
                latencies.append(time.monotonic() - t0)
        remaining = args.window - (dt.datetime.now(UTC) - start).total_seconds()
        if remaining > 0:
            time.sleep(remaining)
        end = dt.datetime.now(UTC)
        runs = _runs(store)
        lo, hi, slots = _slots(runs, sources, start, end, every)
        out.update({
            "sources": len(sources), "portals": len(portals), "window_seconds": round((end - start).total_seconds(), 1),
            "syncs_per_source_per_interval": {"min": lo, "max": hi, "slots": slots,
                                              **_rate(runs, sources, start, end, every)},
            "duplicate_publishes": _duplicates(_publishes(store), start, end, every),
            "edit_to_portal_p50": round(statistics.median(latencies), 2) if latencies else None,
            "edit_to_portal_p95": round(sorted(latencies)[max(0, int(len(latencies) * 0.95 + 0.5) - 1)], 2) if latencies else None,
            "edits_seen": f"{len(latencies)}/{len(targets)}",
        })
        if processes > 1:
            out.update(_failover(store, procs, mode, sources, every, here))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        store.close()
    return out


def _failover(store: Store, procs: list[subprocess.Popen[bytes]], mode: str, sources: list[str], every: float,
              here: Path) -> dict[str, Any]:
    if mode == "run":
        leader = current_leader(store)
        victim = next(p for p in procs if leader is not None and p.pid == leader.pid)
        watched = sources
    else:
        # the worker holding a sync right now (its pid is in the source's lock file)
        victim, watched = None, sources
        deadline = time.monotonic() + 30
        while victim is None and time.monotonic() < deadline:
            for src in sources:
                lock = Path(f"{store.engine.url.database}.{src}.lock")
                m = re.search(r"pid (\d+)", lock.read_text()) if lock.exists() else None
                hit = [p for p in procs[:-1] if m and p.pid == int(m.group(1))]
                if hit:
                    victim, watched = hit[0], [src]
                    break
            time.sleep(0.01)
        if victim is None:
            return {"failover_seconds": None, "note": "no worker caught holding a sync"}
    before = {s: max(at for src, at, _ in _runs(store) if src == s) for s in watched}
    victim.send_signal(signal.SIGKILL)
    killed = dt.datetime.now(UTC)
    victim.wait(10)
    ok = _wait(lambda: all(any(src == s and at > killed for src, at, _ in _runs(store)) for s in watched), 60)
    if not ok:
        return {"failover_seconds": None, "note": f"no sync after the kill; see {here}"}
    runs = _runs(store)
    first = {s: min(at for src, at, _ in runs if src == s and at > killed) for s in watched}
    return {
        "killed": "leader" if mode == "run" else "worker",
        "failover_seconds": round(max((first[s] - killed).total_seconds() for s in watched), 2),
        "max_gap_after_kill": round(max((first[s] - before[s]).total_seconds() for s in watched), 2),
        "interval_seconds": every,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=int, default=6)
    ap.add_argument("--portals", type=int, default=4)
    ap.add_argument("--every", default="3s", help="sync interval of every source")
    ap.add_argument("--window", type=float, default=24.0, help="seconds of steady state measured per scenario")
    ap.add_argument("--cycles", type=int, default=4, help="edits timed per scenario")
    ap.add_argument("--entries", type=int, default=300)
    ap.add_argument("--mode", choices=["run", "celery", "both"], default="run")
    ap.add_argument("--broker", default=None, help="Celery broker URL (redis://127.0.0.1:6379/0)")
    ap.add_argument("--store-url", default=None, help="a PostgreSQL URL (default: a fresh SQLite file per scenario)")
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args()
    if args.mode != "run" and not args.broker:
        ap.error("--mode celery needs --broker")
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    modes = ["run", "celery"] if args.mode == "both" else [args.mode]
    results = []
    with Sandbox(generate_agency(seed=4, entries=args.entries), rate_limits=False) as sb:
        for mode in modes:
            for n in (1, 3):
                r = scenario(sb, args, mode, n, work)
                print(json.dumps(r), flush=True)
                results.append(r)
    print(json.dumps({"benchmark": "scale", "every": args.every, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
