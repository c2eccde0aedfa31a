"""Protected portals in a real headless Chromium: unlock, wrong passphrase, idle re-lock.

Reuses the renderer's DevTools harness (tests/publishers/test_browser.py). The pages are
opened from disk (file://, a secure context, so WebCrypto is available as on https).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from publishers.protect import protect
from publishers.render import render_portal
from tests.publishers.factory import PEOPLE, make_view, link
from tests.publishers.test_browser import VISIBLE, Cdp, _set, browser, open_page, problems, screenshot  # noqa: F401 - fixture

pytestmark = pytest.mark.browser

PASSPHRASE = "tq7k-m2xa-9bwe-rr4h-kzp3-n8vd"
ITERATIONS = 100_000  # the browser repeats them on each unlock; the default is covered once below


def _pages(tmp_path: Path, *, iterations: int = ITERATIONS, idle_minutes: float = 30, n: int = 40) -> tuple[Path, Path, Any, list]:
    view = make_view(n=n)
    files = render_portal(view, link, "tok")
    plain = tmp_path / "plain"
    locked = tmp_path / "locked"
    plain.mkdir()
    locked.mkdir()
    for f in files:
        (plain / f.path).write_bytes(f.data)
    for f in protect(files, PASSPHRASE, iterations=iterations, idle_minutes=idle_minutes):
        (locked / f.path).write_bytes(f.data)
    return plain / "index.html", locked / "index.html", view, files


def _wait(cdp: Cdp, expression: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cdp.eval(expression)
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(expression)


def _submit(cdp: Cdp, phrase: str) -> None:
    cdp.eval(f"document.getElementById('passphrase').value = {json.dumps(phrase)};"
             "document.getElementById('unlock').requestSubmit()")


TEXT = "document.body.innerText"
UNLOCKED = "!!document.getElementById('timesheet')"


def test_right_passphrase_shows_the_same_portal_and_filters_work(browser: str, tmp_path: Path) -> None:
    plain, locked, view, _ = _pages(tmp_path, iterations=600_000)
    ref = open_page(browser, plain.as_uri(), 1280)
    try:
        expected = ref.eval(TEXT)
    finally:
        ref.close()
    cdp = open_page(browser, locked.as_uri(), 1280)
    try:
        assert cdp.eval("!!document.getElementById('passphrase')")
        assert view.client_name not in cdp.eval(TEXT)
        _submit(cdp, "  " + PASSPHRASE + " ")  # surrounding blanks from a copy-paste are forgiven
        _wait(cdp, UNLOCKED)
        assert cdp.eval(TEXT) == expected
        assert cdp.eval(VISIBLE) == len(view.timesheet)
        person = PEOPLE[1]
        _set(cdp, "person", str(sorted(PEOPLE, key=str.casefold).index(person)))
        assert cdp.eval(VISIBLE) == sum(1 for r in view.timesheet if r.person == person)
        errors, requests = problems(cdp, locked.as_uri())
        assert errors == []
        assert [u for u in requests if not u.startswith("blob:")] == []
    finally:
        cdp.close()


def test_exports_download_decrypted_from_blob_urls(browser: str, tmp_path: Path) -> None:
    _, locked, _, files = _pages(tmp_path)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    cdp = open_page(browser, locked.as_uri(), 1280)
    try:
        _submit(cdp, PASSPHRASE)
        _wait(cdp, UNLOCKED)
        links = cdp.eval("[...document.querySelectorAll('.downloads a')].map(a => [a.href, a.download])")
        exports = {f.download_name: f for f in files if f.path != "index.html"}
        assert sorted(name for _, name in links) == sorted(exports)
        assert all(href.startswith("blob:") for href, _ in links)
        cdp.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}, session=False)
        cdp.eval("document.querySelector('.downloads a[href]').click()")
        first = links[0][1]
        deadline = time.monotonic() + 10
        while not (downloads / first).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (downloads / first).read_bytes() == exports[first].data
    finally:
        cdp.close()


def test_wrong_passphrase_shows_a_message_and_nothing_else(browser: str, tmp_path: Path) -> None:
    _, locked, view, _ = _pages(tmp_path)
    cdp = open_page(browser, locked.as_uri(), 390, mobile=True)
    try:
        before = cdp.eval(TEXT)
        assert cdp.eval("document.documentElement.scrollWidth <= window.innerWidth")
        _submit(cdp, PASSPHRASE[:-1] + "x")
        message = _wait(cdp, "!document.getElementById('error').hidden && document.getElementById('error').textContent")
        screenshot(cdp, "protected-wrong-passphrase-390.png")
        assert "passphrase is not right" in message
        assert cdp.eval("document.getElementById('error').getAttribute('role')") == "alert"
        text = cdp.eval(TEXT)
        assert text.replace(message, "").strip() == before.strip()
        assert view.client_name not in cdp.eval("document.documentElement.outerHTML")
        assert cdp.eval(UNLOCKED) is False
        assert cdp.eval("document.activeElement.id") == "passphrase"
    finally:
        cdp.close()


def test_idle_timeout_relocks_and_wipes_the_page(browser: str, tmp_path: Path) -> None:
    _, locked, view, _ = _pages(tmp_path, idle_minutes=1 / 60)  # one second
    cdp = open_page(browser, locked.as_uri(), 1280)
    try:
        _submit(cdp, PASSPHRASE)
        _wait(cdp, UNLOCKED)
        assert view.client_name in cdp.eval(TEXT)
        _wait(cdp, "!!document.getElementById('passphrase')", timeout=5)
        assert "locked itself" in cdp.eval("document.getElementById('status').textContent")
        html = cdp.eval("document.documentElement.outerHTML")
        distinctive = [view.client_name, *PEOPLE[:2], view.timesheet[0].project]
        assert [s for s in distinctive if s in html] == []
        # nothing of the portal left in a global string either
        leftovers = cdp.eval(
            "(needles => Object.getOwnPropertyNames(window).filter(k => { try { const v = window[k];"
            " return typeof v === 'string' && needles.some(n => v.includes(n)); } catch (e) { return false; } }))"
            f"({json.dumps(distinctive)})"
        )
        assert leftovers == []
        assert cdp.eval("document.querySelectorAll('a[href^=\"blob:\"]').length") == 0
        # and it opens again
        _submit(cdp, PASSPHRASE)
        _wait(cdp, UNLOCKED)
        assert view.client_name in cdp.eval(TEXT)
        errors, _ = problems(cdp, locked.as_uri())
        assert errors == []
    finally:
        cdp.close()


def test_activity_keeps_the_page_open(browser: str, tmp_path: Path) -> None:
    _, locked, _, _ = _pages(tmp_path, idle_minutes=1 / 60)  # one second
    cdp = open_page(browser, locked.as_uri(), 1280)
    try:
        _submit(cdp, PASSPHRASE)
        _wait(cdp, UNLOCKED)
        for _ in range(6):  # 1.8 s of activity, longer than the idle limit
            time.sleep(0.3)
            cdp.eval("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Tab'}))")
        assert cdp.eval(UNLOCKED) is True
        _wait(cdp, "!!document.getElementById('passphrase')", timeout=5)
    finally:
        cdp.close()
