"""Every sentence the bridge shows a client, as gettext msgids, extracted from the templates
and the code; and what each shipped catalog lacks.

Run `python -m tests.helpers.messages` to print, per language, the msgids a catalog is
missing (as .po stubs to translate and append to bridge/locale/<lang>/LC_MESSAGES/messages.po).
"""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_KEYWORDS = {"tr": None, "trn": (1, 2)}
PYTHON_KEYWORDS = {"gettext": None, "ngettext": (1, 2), "T": None, "N_": None}
PYTHON_SOURCES = ("bridge", "publishers")
PLACEHOLDER = re.compile(r"%\((\w+)\)s|\{(\w+)\}")


def _jinja(fileobj, keywords, comment_tags, options):  # type: ignore[no-untyped-def]
    from jinja2.ext import babel_extract

    return babel_extract(fileobj, keywords, comment_tags, {**options, "trim_blocks": "true", "lstrip_blocks": "true"})


def msgids() -> dict[str, str]:
    """msgid -> where it was first found (file:line). Plural forms count both ids."""
    found: dict[str, str] = {}

    def add(message: str | tuple, where: str) -> None:
        for m in (message if isinstance(message, tuple) else (message,)):
            if m:
                found.setdefault(m, where)

    for path in sorted((ROOT / "publishers" / "templates").rglob("*.j2")):
        with path.open("rb") as fh:
            for lineno, message, _comments, _ctx in extract(_jinja, fh, keywords=TEMPLATE_KEYWORDS):
                add(message, f"{path.relative_to(ROOT)}:{lineno}")
    for folder in PYTHON_SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            with path.open("rb") as fh:
                for lineno, message, _comments, _ctx in extract("python", fh, keywords=PYTHON_KEYWORDS):
                    add(message, f"{path.relative_to(ROOT)}:{lineno}")
    return found


def catalog(language: str) -> dict[str, str | tuple]:
    po = ROOT / "bridge" / "locale" / language / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as fh:
        cat = read_po(fh, locale=language)
    out: dict[str, str | tuple] = {}
    for m in cat:
        if not m.id:
            continue
        for i, mid in enumerate(m.id if isinstance(m.id, tuple) else (m.id,)):
            out[mid] = m.string[i] if isinstance(m.string, tuple) else m.string
    return out


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def _po_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


if __name__ == "__main__":
    from bridge.i18n import shipped_languages

    ids = msgids()
    for lang in shipped_languages():
        if lang == "en":
            continue
        have = catalog(lang)
        missing = [m for m in ids if not have.get(m)]
        print(f"# {lang}: {len(missing)} missing of {len(ids)}")
        for m in missing:
            print(f"#: {ids[m]}\nmsgid {_po_quote(m)}\nmsgstr \"\"\n")
