"""`bridge demo` (the README's first command) at the hours where the agency's date is not
the machine's: just before midnight UTC, Berlin is already in the next day, week or month.
The demo checks its figures against the trackers' own reports, so a "this month" counted
by the wrong date shows up as a difference and a failed demo.

Runs the demo under libfaketime (Debian's `faketime`), which .ci/run installs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("instant", [
    "2026-11-30 23:30:00",  # Berlin: 1 December, a new month (the case that failed)
    "2026-12-06 23:30:00",  # Berlin: Monday, a new week
])
def test_the_demo_agrees_with_the_trackers_at_any_hour(tmp_path: Path, instant: str) -> None:
    faketime = shutil.which("faketime")
    if faketime is None:
        skip_or_fail("faketime is not installed (Debian package faketime)")
    env = {**os.environ, "TZ": "UTC"}
    done = subprocess.run(
        [faketime, "-f", f"@{instant}", sys.executable, "-m", "bridge", "demo", "--entries", "400",
         "--out", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "figures, no difference" in done.stdout
