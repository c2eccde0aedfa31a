"""The publish-time guard is not vacuous: a portal rendered under an open policy, checked
against a private policy's hidden values, is stopped - in every file type it writes."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import VisibilityConfig
from bridge.errors import LeakError
from bridge.leakguard import find_leaks, hidden_values, scan
from bridge.store import Store
from bridge.views import build_portal_view
from publishers.render import render_portal
from tests.helpers import sentinel_agency as sentinel

MARKERS = dict(internal_tasks=[sentinel.INTERNAL_TASK], internal_note_prefixes=[sentinel.INTERNAL_PREFIX],
               internal_tags=[sentinel.INTERNAL_TAG])
OPEN = VisibilityConfig(rates="shown", descriptions="detailed", team_names="full", non_billable="shown",
                        invoices="shown", view="realtime", **MARKERS)
PRIVATE = VisibilityConfig(**MARKERS)  # the defaults: the most private of every setting


@pytest.fixture(scope="module")
def agency_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('guard') / 'store.db'}")
    s.migrate()
    agency = sentinel.SentinelAgency().populate(s)
    yield agency, s
    s.close()


def test_open_portal_checked_against_private_policy_is_stopped_in_every_file(agency_store: Any) -> None:
    agency, store = agency_store
    open_cfg = agency.config(OPEN)
    open_view = build_portal_view(store, open_cfg, open_cfg.client(sentinel.OUR_KEY), now=sentinel.NOW, previous_snapshot=None)
    files = render_portal(open_view, lambda token, path: path, "tok")
    private_cfg = agency.config(PRIVATE)
    hidden = hidden_values(store, private_cfg, private_cfg.client(sentinel.OUR_KEY))
    hits = find_leaks(files, hidden)
    by_file: dict[str, set[str]] = {}
    for path, hv in hits:
        by_file.setdefault(path, set()).add(hv.field.split(" ")[0])
    assert set(by_file) == {f.path for f in files}, by_file
    for path, fields in by_file.items():
        assert any("rate" in f for f in fields), (path, fields)  # numbers are caught too
    assert any("last_name" in f or "full name" in f for f in by_file["index.html"])
    with pytest.raises(LeakError) as err:
        scan(files, hidden)
    # the error names the field, never the hidden value itself
    assert "SNTL" not in str(err.value)


def test_private_portal_passes_its_own_guard(agency_store: Any) -> None:
    agency, store = agency_store
    cfg = agency.config(PRIVATE)
    client = cfg.client(sentinel.OUR_KEY)
    view = build_portal_view(store, cfg, client, now=sentinel.NOW, previous_snapshot=None)
    scan(render_portal(view, lambda token, path: path, "tok"), hidden_values(store, cfg, client, view=view))


def test_a_pdf_that_cannot_be_read_stops_the_publish() -> None:
    from bridge.leakguard import HiddenValue
    from bridge.publisher import RenderedFile

    broken = RenderedFile("report.pdf", b"%PDF-1.4 not really a pdf", "application/pdf")
    with pytest.raises(LeakError, match="could not be read to check it"):
        scan([broken], [HiddenValue("people.email (h:1)", "someone@example.com", "email")])


def test_guard_catches_a_hidden_arabic_value_in_the_shaped_pdf() -> None:
    """The PDF draws Arabic as joined presentation forms; the guard still reads the letters."""
    import unicodedata

    from publishers.exports.pdf import visual

    hidden = "ترحيل البيانات السرية"
    shaped = visual(hidden)
    assert shaped != hidden and unicodedata.normalize("NFKC", shaped)[::-1].replace(" ", "") != ""
    from bridge.leakguard import _pdf_texts  # the guard's own PDF reader

    from tests.publishers.factory import link, make_view
    from publishers.render import render_portal

    pdf = next(f.data for f in render_portal(make_view(n=2, note=hidden), link, "tok") if f.path == "report.pdf")
    assert any(hidden in text for text in _pdf_texts(pdf))
