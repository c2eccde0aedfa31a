"""Shared by the benchmark scripts: a sandbox in its own process, and peak RSS."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]

SANDBOX_PROC = """
import sys
from connectors.sandbox import start_sandbox
s = start_sandbox(seed=int(sys.argv[1]), entries=int(sys.argv[2]), port=0, rate_limits=sys.argv[3] == "1", shared=True)
print(s.base_url, flush=True)
s.wait()
"""


class SandboxProcess:
    """The sandbox in a child process, so the bridge's memory and CPU are measured alone."""

    def __init__(self, entries: int, *, seed: int = 1, rate_limits: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SANDBOX_PROC, str(seed), str(entries), "1" if rate_limits else "0"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )
        line = self.proc.stdout.readline().strip() if self.proc.stdout else ""
        if not line.startswith("http"):
            self.proc.kill()
            raise SystemExit(f"sandbox did not start (got {line!r})")
        self.base_url = line
        self.admin = httpx.Client(base_url=f"{line}/_sandbox", timeout=120)

    def info(self) -> dict:
        return self.admin.get("/info").json()

    def counters(self) -> dict:
        return self.admin.get("/counters").json()

    def close(self) -> None:
        self.admin.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def __enter__(self) -> "SandboxProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timer() -> float:
    return time.perf_counter()


def table(rows: list[tuple[str, object]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


os.environ.setdefault("PYTHONHASHSEED", "0")
