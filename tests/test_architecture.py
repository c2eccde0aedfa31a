"""The rules DESIGN.md states about structure, checked: who may import whom, and docs coverage."""

from __future__ import annotations

import ast
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_core_never_imports_connectors_or_publishers_except_cli() -> None:
    offenders = {
        p.name: sorted(_imports(p) & {"connectors", "publishers"})
        for p in (ROOT / "bridge").glob("*.py")
        if _imports(p) & {"connectors", "publishers"}
    }
    assert offenders == {}


def test_only_the_cli_wiring_builds_connectors_and_publishers() -> None:
    """The CLI package's command modules ask `wiring` for parts; only it (and the demo,
    which starts the sandbox) may import connectors or publishers at module level."""
    cli_dir = ROOT / "bridge" / "cli"
    assert (cli_dir / "__init__.py").exists()
    for p in cli_dir.glob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        top = {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}
        top |= {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        assert not top & {"connectors", "publishers"}, (p.name, "imports them at module level; use wiring")


def test_connectors_never_touch_the_store_or_publishers() -> None:
    for p in (ROOT / "connectors").glob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert "publishers" not in {m.split(".")[0] for m in mods}, p.name
        assert not any(m.startswith("publishers") for m in mods), p.name


def test_sandbox_shares_no_code_with_connectors() -> None:
    for p in (ROOT / "connectors" / "sandbox").glob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
                assert not n.module.startswith(("connectors.harvest", "connectors.freshbooks", "connectors.productive", "connectors.jsonapi", "bridge.normalize")), (p.name, n.module)


def test_publishers_never_see_the_store_or_tables() -> None:
    for p in (ROOT / "publishers").rglob("*.py"):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not mods & {"bridge.store", "bridge.models", "sqlmodel"}, (p.name, mods & {"bridge.store", "bridge.models", "sqlmodel"})


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + name, cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + name + " ")
    return out


def test_every_command_has_help_and_is_in_the_readme() -> None:
    from bridge.cli import cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, cmd in _commands(cli):
        assert (cmd.help or "").strip(), f"`bridge {name}` has no help text"
        assert f"bridge {name}" in readme, f"`bridge {name}` is not documented in README.md"


def test_global_options_are_accepted_after_the_subcommand(tmp_path: Path) -> None:
    """cron lines and runbooks put `-c` and `-v` anywhere; both orders mean the same."""
    from click.testing import CliRunner

    from bridge.cli import cli
    from bridge.cli.base import hoist_global_options

    assert hoist_global_options(["status", "-c", "/etc/b.toml", "-vv", "--json"]) == \
        ["-c", "/etc/b.toml", "-vv", "status", "--json"]
    assert hoist_global_options(["--log-format=json", "sync", "--source", "h", "--config=/x.toml"]) == \
        ["--log-format=json", "--config=/x.toml", "sync", "--source", "h"]
    assert hoist_global_options(["invite", "acme", "--", "-c"]) == ["invite", "acme", "--", "-c"]
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('[[sources]]\nname = "h"\nkind = "harvest"\n', encoding="utf-8")
    after = CliRunner().invoke(cli, ["check-config", "-c", str(cfg)])
    before = CliRunner().invoke(cli, ["-c", str(cfg), "check-config"])
    assert after.exit_code == before.exit_code == 0, after.output
    assert after.output == before.output and str(cfg) in after.output
