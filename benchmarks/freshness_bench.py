"""Freshness: how long from an edit at the provider to the client's portal showing it.

Starts the provider sandbox (in this process) and `bridge run` (a real child process)
syncing Harvest every few seconds and publishing to a local folder. Each cycle edits one
of the client's recent time entries through the sandbox admin API (PATCH
/_sandbox/entries/{id}, a unique note) and times until the re-published index.html
contains it. Then it reads how many requests an idle sync (nothing changed) costs.

    .venv/bin/python benchmarks/freshness_bench.py [--cycles 5] [--every 3s] [--entries 1500]

The last line printed is JSON: p50_seconds, max_seconds, requests_per_cycle_idle (and
the raw samples).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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

from bridge.models import PortalLink, SyncRun, TimeEntry  # noqa: E402
from bridge.store import Store  # noqa: E402
from connectors.sandbox import HARVEST_ACCOUNT_ID, HARVEST_TOKEN, Sandbox, generate_agency  # noqa: E402


def _config(path: Path, base_url: str, store_url: str, site: Path, client_id: str, every: str) -> None:
    path.write_text(
        f'[store]\nurl = "{store_url}"\n'
        f'[[sources]]\nname = "harvest"\nkind = "harvest"\nbase_url = "{base_url}"\n'
        f'account_id = "{HARVEST_ACCOUNT_ID}"\ntoken_env = "HARVEST_TOKEN"\nevery = "{every}"\n'
        f'[[clients]]\nkey = "bench"\nname = "Bench client"\nsources = {{ harvest = ["{client_id}"] }}\n'
        # the edited note must show: detailed descriptions in realtime view; the rest private
        '[clients.visibility]\ndescriptions = "detailed"\nview = "realtime"\n'
        f'[publish]\ntarget = "file://{site}"\n',
        encoding="utf-8",
    )


def _portal_index(store: Store) -> Path | None:
    t = PortalLink.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t.c.url).where(t.c.client_key == "bench")).first()
    if row is None or not row[0]:
        return None
    parts = urlsplit(row[0])
    path = Path(unquote(parts.path))
    return path if path.suffix else path / "index.html"


def _wait(cond: Any, timeout: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(poll)
    return False


def _recent_entries(store: Store, client_id: str, n: int) -> list[str]:
    t = TimeEntry.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        rows = conn.execute(
            # billable: non-billable time is hidden by the default policy
            sa.select(t.c.source_id).where(t.c.client_source_id == client_id, t.c.is_deleted.is_(False),
                                           t.c.is_running.is_(False), t.c.is_billable.is_(True))
            .order_by(t.c.spent_date.desc(), t.c.source_id).limit(n)
        ).all()
    return [r[0] for r in rows]


def _idle_requests(store: Store, since_id: int) -> float | None:
    t = SyncRun.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.requests).where(t.c.id > since_id, t.c.status == "ok", t.c.new == 0, t.c.updated == 0, t.c.deleted == 0)
        ).all()
    return statistics.mean(r[0] for r in rows) if rows else None


def _last_run_id(store: Store) -> int:
    t = SyncRun.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.id), 0))).scalar_one())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--every", default="3s", help="sync interval of the source")
    ap.add_argument("--entries", type=int, default=1500)
    ap.add_argument("--timeout", type=float, default=60.0, help="give up on one cycle after this many seconds")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="freshness-"))
    store = Store(f"sqlite:///{work / 'store.db'}")
    store.migrate()
    result: dict[str, Any] = {"benchmark": "freshness", "cycles": args.cycles, "every": args.every, "entries": args.entries}
    with Sandbox(generate_agency(seed=3, entries=args.entries), rate_limits=False) as sb:
        client_id = str(next(iter(sb.agency.clients)))
        cfg = work / "bridge.toml"
        _config(cfg, sb.url("harvest"), store.url, work / "site", client_id, args.every)
        env = {**os.environ, "HARVEST_TOKEN": HARVEST_TOKEN, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "bridge", "-c", str(cfg), "run"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=open(work / "run.log", "w"))  # noqa: SIM115
        samples: list[float] = []
        try:
            if not _wait(lambda: (p := _portal_index(store)) is not None and p.exists(), args.timeout):
                raise RuntimeError(f"the portal was never published; see {work / 'run.log'}")
            if not _wait(lambda: len(_recent_entries(store, client_id, args.cycles)) == args.cycles, args.timeout):
                raise RuntimeError("the first sync never brought the client's entries")
            targets = _recent_entries(store, client_id, args.cycles)
            admin = httpx.Client(base_url=sb.base_url + "/_sandbox", timeout=10)
            for i, entry_id in enumerate(targets):
                marker = f"freshness-{i}-{uuid.uuid4().hex[:10]}"
                admin.patch(f"/entries/{entry_id}", json={"notes": marker}).raise_for_status()
                t0 = time.monotonic()

                def shows() -> bool:
                    p = _portal_index(store)
                    try:
                        return p is not None and marker in p.read_text(encoding="utf-8")
                    except OSError:
                        return False

                if not _wait(shows, args.timeout):
                    raise RuntimeError(f"cycle {i}: entry {entry_id}'s edit never reached the portal")
                samples.append(time.monotonic() - t0)
            # idle: a few syncs with nothing changed at the provider
            mark = _last_run_id(store)
            interval = max(1.0, float(args.every.rstrip("s")) if args.every.endswith("s") else 5.0)
            _wait(lambda: _idle_requests(store, mark) is not None and _last_run_id(store) - mark >= 3, interval * 6 + 30)
            result["requests_per_cycle_idle"] = _idle_requests(store, mark)
        except RuntimeError as exc:
            result["error"] = str(exc)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                result["exit_code"] = proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                result["exit_code"] = "killed"
    result["samples_seconds"] = [round(s, 3) for s in samples]
    result["p50_seconds"] = round(statistics.median(samples), 3) if samples else None
    result["max_seconds"] = round(max(samples), 3) if samples else None
    result.setdefault("requests_per_cycle_idle", None)
    result["at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    print(json.dumps(result))
    store.close()
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
