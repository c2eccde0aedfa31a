"""The portal in a real headless Chromium, driven over the DevTools protocol.

Opens index.html from disk (file://), then checks: no console errors or exceptions, no
request other than the page itself, the filters change the visible rows and the totals,
and saves phone- and desktop-width screenshots under test-artifacts/ for a human look.
Needs Debian's chromium (/usr/bin/chromium) and the websocket-client package.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from publishers.render import render_portal
from tests.conftest import skip_or_fail
from tests.publishers.factory import PEOPLE, make_view, link

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("BRIDGE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]


class Cdp:
    """The smallest DevTools client that serves these tests: one page session, flat mode."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=20, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> dict[str, Any]:
        msg_id = next(self.ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        for e in self.events[:seen]:
            if e.get("method") == method:
                self.events.remove(e)
                return e
        while time.monotonic() < deadline:
            e = json.loads(self.ws.recv())
            if e.get("method") == method:
                return e
            self.events.append(e)
        raise TimeoutError(method)

    def eval(self, expression: str) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"])
        return r["result"].get("value")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import websocket  # noqa: F401
    except ImportError:
        skip_or_fail("the websocket-client package is not installed")
    profile = tmp_path_factory.mktemp("chromium-profile")
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("chromium did not start its DevTools endpoint")
        time.sleep(0.05)
    port, path = port_file.read_text().splitlines()[:2]
    try:
        yield f"ws://127.0.0.1:{port}{path}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(ws_url: str, url: str, width: int, height: int = 900, mobile: bool = False) -> Cdp:
    cdp = Cdp(ws_url)
    target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    cdp.session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Network", "Log"):
        cdp.send(f"{domain}.enable")
    cdp.send("Emulation.setDeviceMetricsOverride",
             {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    cdp.send("Page.navigate", {"url": url})
    cdp.wait_for("Page.loadEventFired")
    return cdp


def problems(cdp: Cdp, page_url: str) -> tuple[list[str], list[str]]:
    """(console errors and exceptions, URLs requested other than the page)."""
    cdp.eval("1")  # drain events queued so far
    errors, requests = [], []
    for e in cdp.events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            errors.append(json.dumps(p.get("args")))
        elif m == "Runtime.exceptionThrown":
            errors.append(json.dumps(p.get("exceptionDetails")))
        elif m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
            errors.append(p["entry"].get("text", ""))
        elif m == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if url != page_url and not url.startswith("data:"):
                requests.append(url)
    return errors, requests


def screenshot(cdp: Cdp, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = cdp.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    out = ARTIFACTS / name
    out.write_bytes(base64.b64decode(shot["data"]))
    return out


def _write_portal(tmp_path: Path, **kw: Any) -> tuple[Path, Any]:
    view = make_view(**kw)
    for f in render_portal(view, link, "tok"):
        (tmp_path / f.path).write_bytes(f.data)
    return tmp_path / "index.html", view


VISIBLE = "[...document.querySelectorAll('#timesheet tbody tr')].filter(r => !r.hidden).length"


def _set(cdp: Cdp, name: str, value: str) -> None:
    cdp.eval(
        f"(() => {{ const el = document.querySelector('#ts-filters [name={name}]');"
        f" el.value = {json.dumps(value)}; el.dispatchEvent(new Event('change', {{bubbles: true}})); }})()"
    )


def test_portal_loads_cleanly_and_filters(browser: str, tmp_path: Path) -> None:
    index, view = _write_portal(tmp_path, n=120)
    url = index.as_uri()
    cdp = open_page(browser, url, 1280)
    try:
        errors, requests = problems(cdp, url)
        assert errors == []
        assert requests == []
        assert cdp.eval("getComputedStyle(document.getElementById('ts-filters')).display") != "none"
        # a filter with a single choice (here: no second billable kind) would be hidden
        assert cdp.eval("document.querySelector('[name=project]').closest('label').hidden") is False
        assert cdp.eval(VISIBLE) == len(view.timesheet)

        person = PEOPLE[1]
        _set(cdp, "person", str(sorted(PEOPLE, key=str.casefold).index(person)))
        theirs = [r for r in view.timesheet if r.person == person]
        assert cdp.eval(VISIBLE) == len(theirs)
        total = sum((r.hours for r in theirs), Decimal(0))
        assert cdp.eval("document.getElementById('ts-total').textContent") == f"{total:,.2f}"
        assert f"of {len(view.timesheet)} entries" in cdp.eval("document.getElementById('ts-summary').textContent")

        _set(cdp, "billable", "non-billable")
        non_billable = [r for r in theirs if not r.is_billable]
        assert cdp.eval(VISIBLE) == len(non_billable)
        assert cdp.eval("document.getElementById('ts-total').textContent") == \
            f"{sum((r.hours for r in non_billable), Decimal(0)):,.2f}"

        _set(cdp, "billable", "")
        _set(cdp, "person", "")
        day = sorted({r.spent_date for r in view.timesheet})[len(view.timesheet) // 3]
        _set(cdp, "from", day.isoformat())
        _set(cdp, "to", day.isoformat())
        assert cdp.eval(VISIBLE) == sum(1 for r in view.timesheet if r.spent_date == day)

        cdp.eval("document.getElementById('ts-filters').reset()")
        cdp.eval("new Promise(r => setTimeout(r, 20))")
        assert cdp.eval(VISIBLE) == len(view.timesheet)
        assert cdp.eval("document.getElementById('ts-total').textContent") == f"{view.total_hours:,.2f}"
        errors, requests = problems(cdp, url)
        assert errors == [] and requests == []
    finally:
        cdp.close()


def test_weekly_view_filters(browser: str, tmp_path: Path) -> None:
    index, view = _write_portal(tmp_path, n=200, weekly=True)
    cdp = open_page(browser, index.as_uri(), 1280)
    try:
        assert cdp.eval(VISIBLE) == len(view.weekly_summaries)
        _set(cdp, "billable", "billable")
        shown = [r for r in view.weekly_summaries if r.billable_hours > 0]
        assert cdp.eval(VISIBLE) == len(shown)
        assert cdp.eval("document.getElementById('ts-total').textContent") == \
            f"{sum((r.billable_hours for r in shown), Decimal(0)):,.2f}"
        errors, requests = problems(cdp, index.as_uri())
        assert errors == [] and requests == []
    finally:
        cdp.close()


def test_table_reads_without_script(browser: str, tmp_path: Path) -> None:
    index, view = _write_portal(tmp_path, n=30)
    cdp = open_page(browser, "about:blank", 1280)
    try:
        cdp.send("Emulation.setScriptExecutionDisabled", {"value": True})
        cdp.send("Page.navigate", {"url": index.as_uri()})
        cdp.wait_for("Page.loadEventFired")
        cdp.send("Emulation.setScriptExecutionDisabled", {"value": False})  # to query the DOM
        assert cdp.eval("getComputedStyle(document.getElementById('ts-filters')).display") == "none"
        assert cdp.eval(VISIBLE) == len(view.timesheet)
        assert cdp.eval("document.getElementById('timesheet').getBoundingClientRect().height") > 300
    finally:
        cdp.close()


@pytest.mark.parametrize(("name", "width", "mobile"), [("portal-phone-390.png", 390, True),
                                                        ("portal-desktop-1280.png", 1280, False)])
def test_screenshots(browser: str, tmp_path: Path, name: str, width: int, mobile: bool) -> None:
    index, _ = _write_portal(tmp_path, n=25)
    cdp = open_page(browser, index.as_uri(), width, mobile=mobile)
    try:
        # no horizontal scrolling of the page itself; wide tables scroll inside their box
        assert cdp.eval("document.documentElement.scrollWidth <= window.innerWidth")
        out = screenshot(cdp, name)
        assert out.stat().st_size > 10_000
    finally:
        cdp.close()


def test_hostile_text_stays_inert_in_the_browser(browser: str, tmp_path: Path) -> None:
    from publishers.render import render_portal as render
    from tests.publishers.test_injection import EVIL, hostile_view

    view = hostile_view(" ".join(EVIL))
    for f in render(view, link, "tok"):
        (tmp_path / f.path).write_bytes(f.data)
    url = (tmp_path / "index.html").as_uri()
    cdp = open_page(browser, url, 1280)
    try:
        cdp.send("Page.enable")
        errors, requests = problems(cdp, url)
        assert errors == [] and requests == []
        assert not [e for e in cdp.events if e.get("method") == "Page.javascriptDialogOpening"]
        assert cdp.eval("document.scripts.length") == 2
        assert cdp.eval("document.images.length") == 1
        assert cdp.eval("document.querySelectorAll('[onerror],[onmouseover]').length") == 0
        assert EVIL[0] in cdp.eval("document.querySelector('h1').textContent")
        # the filter script still works on the hostile names (they came through the island)
        assert cdp.eval(VISIBLE) == len(view.timesheet)
        assert cdp.eval("[...document.querySelector('[name=person]').options].some(o => o.textContent.includes('</script>'))")
    finally:
        cdp.close()


@pytest.mark.slow
def test_20000_entries_filter_quickly(browser: str, tmp_path: Path) -> None:
    index, view = _write_portal(tmp_path, n=20_000)
    cdp = open_page(browser, index.as_uri(), 1280)
    try:
        assert cdp.eval(VISIBLE) == 20_000
        ms = cdp.eval(
            "(() => { const t = performance.now(); const el = document.querySelector('#ts-filters [name=person]');"
            " el.value = '0'; el.dispatchEvent(new Event('change', {bubbles: true}));"
            " return performance.now() - t; })()"
        )
        assert 0 < cdp.eval(VISIBLE) < 20_000
        assert ms < 1500, f"filtering 20,000 rows took {ms:.0f} ms"
    finally:
        cdp.close()


def test_print_layout_drops_controls_and_prints(browser: str, tmp_path: Path) -> None:
    index, view = _write_portal(tmp_path, n=80)
    cdp = open_page(browser, index.as_uri(), 1280)
    try:
        cdp.send("Emulation.setEmulatedMedia", {"media": "print"})
        for sel in ("nav.toc", ".downloads", "#ts-filters"):
            assert cdp.eval(f"getComputedStyle(document.querySelector('{sel}')).display") == "none", sel
        # the whole timesheet prints, not a scroll box's window of it
        assert cdp.eval("getComputedStyle(document.querySelector('.scroll.tall')).maxHeight") == "none"
        pdf = base64.b64decode(cdp.send("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69})["data"])
        assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 3
    finally:
        cdp.close()


CONTRAST_JS = r"""
(() => {
  const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const bg = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode());) {
    const el = n.parentElement;
    if (!n.textContent.trim() || el.closest('svg,script,[hidden]') || !el.getClientRects().length) continue;
    const s = getComputedStyle(el);
    if (s.visibility === 'hidden' || s.display === 'none') continue;
    const a = lum(rgb(s.color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const large = parseFloat(s.fontSize) >= 24 || (parseFloat(s.fontSize) >= 18.66 && +s.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(n.textContent.trim().slice(0, 30) + ' ' + ratio.toFixed(2));
  }
  return bad;
})()
"""


@pytest.mark.parametrize("accent", ["#1f5fbf", "#ffd400", "#7fd1ff"])
def test_text_meets_aa_contrast(browser: str, tmp_path: Path, accent: str) -> None:
    index, _ = _write_portal(tmp_path, n=10, accent=accent)
    cdp = open_page(browser, index.as_uri(), 1280)
    try:
        assert cdp.eval(CONTRAST_JS) == []
    finally:
        cdp.close()
