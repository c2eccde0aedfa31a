"""Logs: human lines or JSON lines, and never a secret - not even from a verbose, retrying sync."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.logs import setup_logging
from connectors.sandbox import Sandbox, generate_agency
from connectors.sandbox.demo import source_block, to_toml


@pytest.fixture(autouse=True)
def _restore_logging():  # type: ignore[no-untyped-def]
    """setup_logging binds a handler to the (captured) stderr of the moment: drop it after."""
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_bridge", False):
            root.removeHandler(h)
    root.setLevel(logging.WARNING)


def test_json_lines_carry_level_logger_and_message(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("json", verbose=1)
    logging.getLogger("bridge.test").info("harvest: 3 records")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert (record["level"], record["logger"], record["message"]) == ("info", "bridge.test", "harvest: 3 records")
    assert record["event"] == "test.log"
    assert record["timestamp"].endswith("Z")


def test_token_looking_fragments_are_scrubbed(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("human", verbose=1)
    log = logging.getLogger("bridge.test")
    log.warning("GET %s failed", "https://api.example/v2/x?access_token=s3cr3t-t0ken&page=2")
    log.warning("header was Bearer s3cr3t-t0ken")
    err = capsys.readouterr().err
    assert "s3cr3t-t0ken" not in err
    assert err.count("***") == 2


def test_a_verbose_sync_with_retries_never_logs_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(generate_agency(seed=5, today=dt.date(2025, 3, 20), entries=300), rate_limits=False) as box:
        block, env = source_block("harvest", box.url("harvest"))
        block["timeout_seconds"] = 0.5
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        cfg = tmp_path / "bridge.toml"
        cfg.write_text(to_toml({"store": {"url": f"sqlite:///{tmp_path / 's.db'}"}, "sources": [block]}))
        box.inject("harvest", "429", count=1, path_contains="time_entries", retry_after=0)
        box.inject("harvest", "500", count=1, path_contains="projects")
        result = CliRunner().invoke(cli, ["-c", str(cfg), "-vv", "--log-format", "json", "sync"])
    assert result.exit_code == 0, result.output
    logs = result.stderr
    assert "retry" in logs  # the retries were logged ...
    for secret in env.values():
        assert secret not in logs and secret not in result.stdout  # ... without the token
    events = [json.loads(line) for line in logs.splitlines()]  # every line is one JSON object
    for e in events:
        assert {"timestamp", "level", "event", "message"} <= set(e), e
    retries = [e for e in events if e["event"] == "http.retry"]
    assert retries and all(e["source"] == "harvest" and e["attempt"] >= 1 for e in retries)
    done = [e for e in events if e["event"] == "sync.resource"]
    assert {e["resource"] for e in done} >= {"time_entries", "projects"}
    assert all(isinstance(e["seconds"], float) and e["page"] >= 1 for e in done if e["records"])
    [summary] = [e for e in events if e["event"] == "sync.source"]
    assert summary["source"] == "harvest" and summary["status"] == "ok" and summary["requests"] > 0


def test_json_mode_turns_every_stderr_line_into_json_even_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-c", str(tmp_path / "missing.toml"), "--log-format", "json", "sync"])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert lines
    for line in lines:
        record = json.loads(line)
        assert record["level"] == "error" and "missing.toml" in record["message"]
