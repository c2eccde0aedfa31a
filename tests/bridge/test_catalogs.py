"""Every sentence a client reads is translated in every shipped catalog, with the same slots."""

from __future__ import annotations

import pytest

from bridge.i18n import shipped_languages
from tests.helpers.messages import catalog, msgids, placeholders

LANGUAGES = [code for code in shipped_languages() if code != "en"]


@pytest.fixture(scope="module")
def ids() -> dict[str, str]:
    found = msgids()
    assert len(found) > 150  # the extraction found the templates and the code, not nothing
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_untranslated_string(language: str, ids: dict[str, str]) -> None:
    have = catalog(language)
    missing = [f"{where}: {msgid!r}" for msgid, where in ids.items() if not have.get(msgid)]
    assert not missing, (f"{len(missing)} string(s) without a {language} translation "
                         "(`python -m tests.helpers.messages` prints stubs):\n" + "\n".join(missing[:20]))


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_slot(language: str, ids: dict[str, str]) -> None:
    have = catalog(language)
    wrong = [msgid for msgid in ids if have.get(msgid) and placeholders(msgid) != placeholders(str(have[msgid]))]
    assert not wrong, f"{language}: slots differ in {wrong[:10]}"


def test_at_least_two_languages_besides_english() -> None:
    assert {"de", "fr"} <= set(LANGUAGES)
