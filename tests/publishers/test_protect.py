"""Passphrase protection, offline: what the published bytes reveal, and what it takes to read them."""

from __future__ import annotations

import base64
import gzip
import html.parser
import json
import re
import zlib
from pathlib import Path

import pytest

from bridge.config import parse_config
from bridge.errors import ConfigError
from bridge.models import AuditEvent
from bridge.passphrase import (
    ALPHABET,
    apply_protection,
    generate_passphrase,
    get_passphrase,
    rotate_passphrase,
    show_passphrase,
)
from bridge.publisher import RenderedFile
from publishers.protect import AAD, WrongPassphrase, derive_key, protect, read_bundle, unprotect
from publishers.render import render_portal
from tests.publishers.factory import make_view, link

PASSPHRASE = "tq7k-m2xa-9bwe-rr4h-kzp3-n8vd"
FAST = 1_000  # PBKDF2 iterations for tests that are not about the KDF
SHELL_TEMPLATE = (Path(__file__).resolve().parents[2] / "publishers" / "templates" / "protect"
                  / "shell.html.j2").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rendered() -> list[RenderedFile]:
    return render_portal(make_view(n=60), link, "tok")


class _Text(html.parser.HTMLParser):
    """Every text node and attribute value of a page, script and JSON island included."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.chunks.extend(v for _, v in attrs if v)


def words(text: str) -> set[str]:
    return set(re.findall(r"[\w][\w.,:/@'’-]*[\w]", text))


def distinctive(page: str) -> set[str]:
    """Words and figures of the plain page that the generic shell template does not contain."""
    p = _Text()
    p.feed(page)
    found = set().union(*(words(chunk) for chunk in p.chunks))
    generic = words(SHELL_TEMPLATE)
    return {w for w in found if len(w) >= 3 and w not in generic}


def without_bundle(shell: str) -> str:
    return re.sub(r'(<script type="application/json" id="locked-data">).*?(</script>)', r"\1\2", shell, flags=re.S)


def test_round_trip_restores_the_page_and_every_export(rendered: list[RenderedFile]) -> None:
    out = protect(rendered, PASSPHRASE, iterations=FAST)
    assert [f.path for f in out] == ["index.html"]
    opened = unprotect(out[0].data, PASSPHRASE)
    by_path = {f.path: f for f in rendered}
    assert opened.html == by_path["index.html"].data.decode()
    assert {f.path: (f.data, f.content_type, f.download_name) for f in opened.files} == {
        f.path: (f.data, f.content_type, f.download_name) for f in rendered if f.path != "index.html"}


def test_shell_contains_no_text_figure_or_export_of_the_portal(rendered: list[RenderedFile]) -> None:
    plain = next(f for f in rendered if f.path == "index.html").data.decode()
    view = make_view(n=60)
    names = {view.client_name, view.agency.name, *(r.person for r in view.timesheet),
             *(r.project for r in view.timesheet)}
    needles = distinctive(plain) | names
    # the test would prove nothing if the needles missed the words and figures of the page
    assert all(n in plain for n in names)
    assert {"Acme", "Robotics", "Lovelace"} <= needles
    assert any("files.example.test/tok/timesheet.csv" in n for n in needles)  # export links
    assert sum(1 for n in needles if re.fullmatch(r"[\d,]+\.\d\d", n)) >= 20

    shell = protect(rendered, PASSPHRASE, iterations=FAST)[0].data
    outside = without_bundle(shell.decode())
    assert sorted(needles & words(outside)) == []
    assert sorted(n for n in names if n in outside) == []
    bundle = read_bundle(shell)
    assert set(bundle) == {"v", "kdf", "iterations", "salt", "nonce", "idle_seconds", "ciphertext"}
    ciphertext = base64.b64decode(bundle["ciphertext"])
    # the ciphertext is neither the page nor a compressed page: nothing of it is legible
    assert sorted(n for n in needles if len(n) >= 8 and n.encode() in ciphertext) == []
    for unpack in (gzip.decompress, zlib.decompress):
        with pytest.raises(Exception):
            unpack(ciphertext)
    for f in rendered:
        if f.path != "index.html":
            chunk = f.data[len(f.data) // 2:len(f.data) // 2 + 32]
            assert chunk not in shell and base64.b64encode(chunk) not in shell


def test_salt_nonce_and_ciphertext_are_fresh_on_every_publish(rendered: list[RenderedFile]) -> None:
    a = read_bundle(protect(rendered, PASSPHRASE, iterations=FAST)[0].data)
    b = read_bundle(protect(rendered, PASSPHRASE, iterations=FAST)[0].data)
    assert a["salt"] != b["salt"] and a["nonce"] != b["nonce"] and a["ciphertext"] != b["ciphertext"]
    assert len(base64.b64decode(a["salt"])) == 16 and len(base64.b64decode(a["nonce"])) == 12


def test_default_kdf_is_pbkdf2_sha256_with_600k_iterations(rendered: list[RenderedFile]) -> None:
    shell = protect(rendered, PASSPHRASE)[0].data
    b = read_bundle(shell)
    assert (b["kdf"], b["iterations"], b["idle_seconds"]) == ("PBKDF2-SHA256", 600_000, 1800)
    # independent check with hashlib: the key is PBKDF2-HMAC-SHA256 of the passphrase
    import hashlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = hashlib.pbkdf2_hmac("sha256", PASSPHRASE.encode(), base64.b64decode(b["salt"]), 600_000, 32)
    packed = AESGCM(key).decrypt(base64.b64decode(b["nonce"]), base64.b64decode(b["ciphertext"]), AAD)
    assert json.loads(gzip.decompress(packed))["html"].startswith("<!doctype html>")


def test_wrong_passphrase_or_altered_page_does_not_open(rendered: list[RenderedFile]) -> None:
    shell = protect(rendered, PASSPHRASE, iterations=FAST)[0].data
    with pytest.raises(WrongPassphrase):
        unprotect(shell, PASSPHRASE.replace("t", "u", 1))
    b = read_bundle(shell)
    ct = bytearray(base64.b64decode(b["ciphertext"]))
    ct[100] ^= 1
    tampered = shell.replace(b["ciphertext"].encode(), base64.b64encode(bytes(ct)))
    with pytest.raises(WrongPassphrase):
        unprotect(tampered, PASSPHRASE)
    # the salt is part of the key: moving it breaks the page too
    other_salt = base64.b64encode(bytes(16)).decode()
    with pytest.raises(WrongPassphrase):
        unprotect(shell.replace(b["salt"].encode(), other_salt.encode()), PASSPHRASE)


def test_passphrase_is_normalized_like_the_browser_does(rendered: list[RenderedFile]) -> None:
    shell = protect(rendered, " Caf\u0065\u0301-passphrase-1 ", iterations=FAST)[0].data
    assert unprotect(shell, "Caf\u00e9-passphrase-1").html
    assert derive_key("x" * 12, b"s" * 16, 10) == derive_key("\tx" * 1 + "x" * 11 + "\n", b"s" * 16, 10)


def test_gzip_encoded_input_is_encrypted_as_plain_bytes(rendered: list[RenderedFile]) -> None:
    index = next(f for f in rendered if f.path == "index.html")
    packed = RenderedFile("index.html", gzip.compress(index.data), index.content_type, content_encoding="gzip")
    out = protect([packed], PASSPHRASE, iterations=FAST)
    assert out[0].content_encoding is None
    assert unprotect(out[0].data, PASSPHRASE).html == index.data.decode()


@pytest.mark.parametrize("phrase", ["", "short", "   eleven-ch "])
def test_weak_or_missing_passphrase_is_refused(rendered: list[RenderedFile], phrase: str) -> None:
    with pytest.raises(ConfigError, match="at least 12"):
        protect(rendered, phrase, iterations=FAST)


def test_no_index_is_refused() -> None:
    with pytest.raises(ConfigError, match="index.html"):
        protect([RenderedFile("timesheet.csv", b"a,b\n", "text/csv")], PASSPHRASE, iterations=FAST)


def test_idle_minutes_travel_to_the_shell(rendered: list[RenderedFile]) -> None:
    assert read_bundle(protect(rendered, PASSPHRASE, iterations=FAST, idle_minutes=5)[0].data)["idle_seconds"] == 300


# --- passphrases and the publish hook ------------------------------------------------------


def test_generated_passphrases_are_long_random_and_readable() -> None:
    seen = {generate_passphrase() for _ in range(200)}
    assert len(seen) == 200
    for p in seen:
        assert re.fullmatch(r"([a-z2-9]{4}-){5}[a-z2-9]{4}", p)
        assert set(p.replace("-", "")) <= set(ALPHABET)
    assert not set("01ilo") & set(ALPHABET)
    # every symbol shows up: the choice is over the whole alphabet
    assert set("".join(seen).replace("-", "")) == set(ALPHABET)


def _config(protected: bool):
    return parse_config({
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": "acme", "name": "Acme", "sources": {"h": ["1"]}, "passphrase": protected,
                     "idle_minutes": 7}],
    })


def _events(store, action: str) -> list[AuditEvent]:
    from sqlmodel import select

    with store.session() as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)))


def test_rotation_stores_audits_and_never_logs_the_passphrase(store, now) -> None:
    first = rotate_passphrase(store, "acme", now=now)
    second = rotate_passphrase(store, "acme", now=now)
    assert first != second and get_passphrase(store, "acme") == second
    events = _events(store, "passphrase_rotated")
    assert [e.client_key for e in events] == ["acme", "acme"]
    assert all(first not in (e.detail or "") and second not in (e.detail or "") for e in events)
    assert show_passphrase(store, "acme", now=now) == second
    assert len(_events(store, "passphrase_shown")) == 1
    with pytest.raises(ConfigError):
        rotate_passphrase(store, "acme", passphrase="too-short")


def test_apply_protection_fails_closed_and_encrypts_under_the_stored_passphrase(store, rendered) -> None:
    plain = _config(False).clients[0]
    assert apply_protection(store, plain, rendered, protect) == list(rendered)
    protected = _config(True).clients[0]
    with pytest.raises(ConfigError, match="bridge passphrase acme --rotate"):
        apply_protection(store, protected, rendered, protect)
    phrase = rotate_passphrase(store, "acme")
    out = apply_protection(store, protected, rendered,
                           lambda files, p, **kw: protect(files, p, iterations=FAST, **kw))
    assert [f.path for f in out] == ["index.html"]
    assert read_bundle(out[0].data)["idle_seconds"] == 7 * 60
    assert unprotect(out[0].data, phrase).html.startswith("<!doctype html>")


def test_switching_a_published_client_to_protected_removes_its_plain_exports(store, tmp_path, now) -> None:
    """End to end through publishing and the local target, with the hook where publishing calls it."""
    from bridge.publishing import publish_client
    from publishers.local import LocalPublisher
    from tests.publishers.conftest import fake_render, make_config, no_leaks, views

    config = make_config(f"file://{tmp_path / 'site'}", clients=1)
    client = config.clients[0]
    target = LocalPublisher(tmp_path / "site")
    publish_client(store, config, client, target, fake_render, build_view=views(), guard=no_leaks, now=now)
    folder = tmp_path / "site" / get_link_token(store, client.key)
    assert (folder / "timesheet.csv").exists()

    protected = client.model_copy(update={"passphrase": True})
    phrase = rotate_passphrase(store, client.key)

    def render(view, link, token):
        return apply_protection(store, protected, fake_render(view, link),
                                lambda files, p, **kw: protect(files, p, iterations=FAST, **kw))

    publish_client(store, config, protected, target, render, build_view=views(), guard=no_leaks, now=now)
    assert sorted(p.name for p in folder.iterdir()) == [".manifest.json", "index.html"]
    page = (folder / "index.html").read_bytes()
    assert client.name.encode() not in page
    opened = unprotect(page, phrase)
    assert client.name in opened.html and [f.path for f in opened.files] == ["timesheet.csv"]


def get_link_token(store, client_key: str) -> str:
    from bridge.publishing import get_link

    row = get_link(store, client_key)
    assert row is not None
    return row.token


def test_cli_passphrase_rotate_show_and_status(tmp_path) -> None:
    from click.testing import CliRunner

    from bridge.cli import cli

    db = tmp_path / "store.db"
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(
        f'[store]\nurl = "sqlite:///{db}"\n[[sources]]\nname = "h"\nkind = "harvest"\n'
        '[[clients]]\nkey = "acme"\nname = "Acme"\nsources = { h = ["1"] }\npassphrase = true\n'
    )
    run = CliRunner().invoke
    status = run(cli, ["-c", str(cfg), "passphrase", "acme"])
    assert status.exit_code == 0 and "passphrase not set" in status.stdout
    rotated = run(cli, ["-c", str(cfg), "passphrase", "acme", "--rotate"])
    assert rotated.exit_code == 0, rotated.output
    phrase = rotated.stdout.strip()
    assert re.fullmatch(r"([a-z2-9]{4}-){5}[a-z2-9]{4}", phrase)
    assert "separately from the link" in rotated.stderr
    shown = run(cli, ["-c", str(cfg), "passphrase", "acme", "--show"])
    assert shown.stdout.strip() == phrase
    status = run(cli, ["-c", str(cfg), "passphrase", "acme"])
    assert "passphrase set, last rotated" in status.stdout and phrase not in status.output
    audit = run(cli, ["-c", str(cfg), "audit", "--client", "acme"])
    assert "passphrase_rotated" in audit.stdout and "passphrase_shown" in audit.stdout
    assert phrase not in audit.output
    unknown = run(cli, ["-c", str(cfg), "passphrase", "nobody", "--rotate"])
    assert unknown.exit_code == 1 and "no client 'nobody'" in unknown.output
