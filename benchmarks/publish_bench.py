"""Publish N client portals to a local LocalStack S3, then republish with one client changed.

Measures what incremental publishing saves: the second run should upload only the changed
client's objects. Portals are synthetic (four exports and a page of realistic sizes)
so the benchmark measures publishing, not rendering; the orchestration (tokens, links,
manifests, audit) is the real bridge.publishing code.

Usage:
  bash .ci/localstack.sh                     # once: the LocalStack venv
  .venv/bin/python benchmarks/publish_bench.py [--clients 500] [--endpoint http://127.0.0.1:4566]

The last line printed is one JSON object:
  {"clients", "first_seconds", "first_objects", "second_seconds", "second_objects", "bytes_uploaded", ...}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import httpx  # noqa: E402

from bridge import publishing  # noqa: E402
from bridge.config import parse_config  # noqa: E402
from bridge.publisher import RenderedFile  # noqa: E402
from bridge.store import Store  # noqa: E402
from publishers.s3 import S3Publisher  # noqa: E402


def blob(seed: str, size: int) -> bytes:
    """Deterministic, poorly compressible bytes of a given size."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def render(view: dict, link, token: str = "") -> list[RenderedFile]:
    name, version = view["name"], view["version"]
    rows = "".join(f"<tr><td>2025-W{w:02d}</td><td>{(w * 7 + version) % 40}</td></tr>" for w in range(1, 400))
    page = (f"<!doctype html><title>{name}</title><h1>{name}</h1><table>{rows}</table>"
            f"<a href=\"{link('', 'timesheet.csv')}\">CSV</a><a href=\"{link('', 'timesheet.xlsx')}\">XLSX</a>"
            f"<a href=\"{link('', 'report.pdf')}\">PDF</a>").encode()
    csv = "".join(f"2025-03-{d:02d},{name},{(d + version) % 9}.5\n" for d in range(1, 29)).encode() * 20
    return [
        RenderedFile("timesheet.csv", csv, "text/csv; charset=utf-8", download_name=f"{name} timesheet.csv"),
        RenderedFile("timesheet.xlsx", blob(f"{name}x{version}", 9000),
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", f"{name} timesheet.xlsx"),
        RenderedFile("report.pdf", blob(f"{name}p{version}", 24000), "application/pdf", f"{name} report.pdf"),
        RenderedFile("index.html", page, "text/html; charset=utf-8"),
    ]


def start_localstack(data: Path) -> tuple[subprocess.Popen, str]:
    python = ROOT / ".venv-s3emu" / "bin" / "python"
    if not python.exists():
        sys.exit("no .venv-s3emu: run `bash .ci/localstack.sh` first")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
           "GATEWAY_LISTEN": f"127.0.0.1:{port}", "GATEWAY_SERVER": "hypercorn", "SERVICES": "s3",
           "EAGER_SERVICE_LOADING": "1", "S3_SKIP_SIGNATURE_VALIDATION": "0", "DISABLE_EVENTS": "1",
           "DNS_ADDRESS": "0", "LOCALSTACK_VOLUME_DIR": str(data), "FILESYSTEM_ROOT": str(data)}
    log = open(data / "localstack.log", "wb")
    proc = subprocess.Popen([str(python), "-m", "localstack.runtime.main"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=data)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"LocalStack exited; see {data / 'localstack.log'}")
        try:
            if httpx.get(f"{endpoint}/_localstack/health", timeout=1).json()["services"].get("s3") in ("running", "available"):
                return proc, endpoint
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    proc.terminate()
    sys.exit("LocalStack did not start in 60 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--endpoint", help="Use this running S3-compatible endpoint instead of starting LocalStack.")
    args = ap.parse_args()

    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(var, None)
    work = Path(tempfile.mkdtemp(prefix="publish-bench-"))
    proc = None
    if args.endpoint:
        endpoint = args.endpoint
    else:
        proc, endpoint = start_localstack(work)
    try:
        bucket = "bench-" + uuid.uuid4().hex[:10]
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        keys = [f"client-{i:04d}" for i in range(args.clients)]
        config = parse_config({
            "sources": [{"name": "h", "kind": "harvest"}],
            "clients": [{"key": k, "name": f"Client {k[-4:]} Ltd", "sources": {"h": [str(i)]}, "link_expiry": "7d"}
                        for i, k in enumerate(keys)],
            "publish": {"target": f"s3://{bucket}/portals", "endpoint_url": endpoint, "region": "us-east-1"},
        })
        store = Store(f"sqlite:///{work / 'bench.db'}")
        store.migrate()
        target = S3Publisher.from_config(config.publish)
        changed = {keys[len(keys) // 2]}

        def run(versions: dict[str, int]) -> tuple[float, int, int]:
            target.stats.objects = target.stats.bytes = 0
            start = time.perf_counter()
            report = publishing.publish_all(
                store, config, target, render,
                build_view=lambda c, review: {"name": c.name, "version": versions.get(c.key, 0)},
                guard=lambda c, v, f: None)
            seconds = time.perf_counter() - start
            if not report.ok:
                sys.exit(f"{len(report.failed)} client(s) failed: {report.failed[0].error}")
            return seconds, target.stats.objects, target.stats.bytes

        first_s, first_n, first_b = run({})
        second_s, second_n, second_b = run({k: 1 for k in changed})
        link = publishing.get_link(store, sorted(changed)[0])
        assert link and httpx.get(link.url).status_code == 200, "a published link does not open"
        result = {
            "clients": args.clients, "first_seconds": round(first_s, 2), "first_objects": first_n,
            "second_seconds": round(second_s, 2), "second_objects": second_n,
            "bytes_uploaded": first_b + second_b, "first_bytes": first_b, "second_bytes": second_b,
        }
        print(json.dumps(result))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
