"""`bridge demo` end to end, then every demo portal in a real browser (headless Chromium).

The demo syncs all three trackers from the sandbox and renders each client's portal; each
portal must load with no console error and no request beyond itself, at phone and desktop
width, and its filters must change the rows and totals shown.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.cli.demo import _clear_previous_demo
from bridge.errors import BridgeError
from publishers.render import PAGE_ROWS
from tests.publishers.test_browser import (  # noqa: F401
    TOTAL,
    VISIBLE,
    axe_serious,
    axe_source,
    browser,
    check_layout,
    layout,
    matched,
    open_page,
    problems,
    screenshot,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo") / "demo-site"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--entries", "600"])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_demo_syncs_all_three_trackers_and_renders_every_portal(demo: tuple[Path, str]) -> None:
    out, output = demo
    for source in ("harvest", "freshbooks", "productive"):
        assert re.search(rf"^{source}: ok - \d+ new", output, re.M), output
    assert "Per-client totals, as each portal shows them:" in output
    # `bridge verify` over the same sandbox: the store agrees with every tracker's own reports
    assert re.search(r"^Checked against each tracker's own reports: \d+ figures, no difference\.$", output, re.M), output
    portals = re.findall(r"file://(\S+/index\.html)", output)
    assert len(portals) == 4
    assert all(Path(p).exists() for p in portals)
    assert {p.parent for p in out.glob("*/index.html")} == {Path(p).parent for p in portals}
    # the demo's GmbH and AG clients read German (Swiss formats for the AG), the others English
    langs = sorted(re.search(r'<html lang="(\w+)">', Path(p).read_text(encoding="utf-8")).group(1) for p in portals)
    assert langs == ["de", "de", "en", "en"]


def _portals(out: Path) -> list[Path]:
    return sorted(out.glob("*/index.html"))


@pytest.mark.parametrize("width", [390, 1280])
def test_every_demo_portal_loads_cleanly_and_filters(browser: str, axe_source: str, demo: tuple[Path, str],  # noqa: F811
                                                     width: int) -> None:
    out, _ = demo
    for n, index in enumerate(_portals(out)):
        url = index.as_uri()
        cdp = open_page(browser, url, width, mobile=width < 600)
        try:
            errors, requests = problems(cdp, url)
            assert errors == [] and requests == [], (index, errors, requests)
            screenshot(cdp, f"demo-{n + 1}-{'phone' if width < 600 else 'desktop'}-{width}.png")
            # attention first, cards on a phone, every scroll box reachable by keyboard
            facts = layout(cdp)
            check_layout(facts, width)
            assert facts["elements"] < 3_000, (index, facts["elements"])
            if width < 600:
                assert facts["height"] < 15_000, (index, facts["height"])
            assert axe_serious(cdp, axe_source) == [], index
            if not cdp.eval("!!document.getElementById('ts-filters')"):
                continue
            everyone = matched(cdp)
            total = cdp.eval(TOTAL)
            options = cdp.eval("[...document.querySelectorAll('#ts-filters [name=person] option')].map(o => o.value)")
            person = next(v for v in options if v)
            cdp.eval(
                "(() => { const el = document.querySelector('#ts-filters [name=person]');"
                f" el.value = {person!r}; el.dispatchEvent(new Event('change', {{bubbles: true}})); }})()"
            )
            assert 0 < matched(cdp) < everyone, index
            assert 0 < cdp.eval(VISIBLE) <= PAGE_ROWS, index
            assert cdp.eval(TOTAL) != total, index
            assert problems(cdp, url) == ([], [])
        finally:
            cdp.close()


def test_a_new_demo_run_clears_only_what_an_earlier_demo_wrote(tmp_path: Path) -> None:
    (tmp_path / "bridge.toml").write_text("# Written by `bridge demo`: …\n")
    (tmp_path / "clearhours.db").write_text("old store")
    old = tmp_path / "oldtoken"
    old.mkdir()
    (old / ".manifest.json").write_text("{}")
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("not a portal")
    _clear_previous_demo(tmp_path)
    assert not old.exists() and not (tmp_path / "clearhours.db").exists()
    assert (mine / "keep.txt").exists()


def test_demo_refuses_a_folder_with_someone_elses_config(tmp_path: Path) -> None:
    (tmp_path / "bridge.toml").write_text("[store]\nurl = \"sqlite:///prod.db\"\n")
    with pytest.raises(BridgeError, match="did not write; choose another --out"):
        _clear_previous_demo(tmp_path)
    assert (tmp_path / "bridge.toml").exists()
