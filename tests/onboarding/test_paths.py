"""Relative paths in a config file resolve against the file's folder, not the working directory."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from bridge.config import load_config, parse_config
from bridge.models import SyncRun
from bridge.store import Store

ROOT = Path(__file__).resolve().parents[2]


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_store_target_and_key_file_resolve_against_the_config_folder(tmp_path: Path) -> None:
    conf = _write(tmp_path / "etc" / "clearhours", """
[store]
url = "sqlite:///data/clearhours.db"
[publish]
target = "file://./site"
cloudfront_private_key_file = "keys/cf.pem"
""")
    cfg = load_config(conf)
    base = (tmp_path / "etc" / "clearhours").resolve()
    assert cfg.store.url == f"sqlite:///{base}/data/clearhours.db"
    assert cfg.publish.target == f"file://{base}/site"
    assert cfg.publish.cloudfront_private_key_file == f"{base}/keys/cf.pem"


def test_absolute_paths_other_schemes_and_memory_stay_as_written(tmp_path: Path) -> None:
    conf = _write(tmp_path / "c", """
[store]
url = "postgresql://bridge@db.example:5432/clearhours"
[publish]
target = "s3://portals/clients"
""")
    cfg = load_config(conf)
    assert cfg.store.url == "postgresql://bridge@db.example:5432/clearhours"
    assert cfg.publish.target == "s3://portals/clients"
    conf = _write(tmp_path / "d", '[store]\nurl = "sqlite:////srv/clearhours/store.db"\n[publish]\ntarget = "file:///srv/portals"\n')
    cfg = load_config(conf)
    assert cfg.store.url == "sqlite:////srv/clearhours/store.db"
    assert cfg.publish.target == "file:///srv/portals"
    conf = _write(tmp_path / "e", '[store]\nurl = "sqlite://"\n')
    assert load_config(conf).store.url == "sqlite://"


def test_a_config_built_in_memory_keeps_its_paths() -> None:
    cfg = parse_config({"store": {"url": "sqlite:///x.db"}, "publish": {"target": "file://./site"}})
    assert cfg.store.url == "sqlite:///x.db"
    assert cfg.publish.target == "file://./site"


def test_status_with_an_absolute_config_path_from_another_directory_reads_that_store(tmp_path: Path) -> None:
    # what cron and systemd do: `bridge -c /etc/clearhours/bridge.toml status` from anywhere
    conf = _write(tmp_path / "etc" / "clearhours", """
[store]
url = "sqlite:///clearhours.db"
[[sources]]
name = "harvest"
kind = "harvest"
account_id = "1"
token_env = "HARVEST_TOKEN"
""")
    store = Store(f"sqlite:///{conf.parent / 'clearhours.db'}")
    store.migrate()
    finished = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=3)
    with store.session() as s:
        s.add(SyncRun(source="harvest", started_at=finished - dt.timedelta(seconds=20), finished_at=finished, status="ok"))
        s.commit()
    store.close()
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("BRIDGE_CONFIG", None)
    done = subprocess.run([sys.executable, "-m", "bridge", "-c", str(conf), "status", "--json"], cwd=elsewhere,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [source] = report["sources"]
    assert source["name"] == "harvest"
    assert source["last_success_at"] is not None
    assert source["stale"] is False
    assert list(elsewhere.iterdir()) == []  # no stray store in the working directory
