"""Passphrase protection: a rendered portal becomes one shell page that carries only ciphertext.

The whole portal - index.html (with its timesheet JSON) and every export - is packed into
one JSON document, gzip-compressed, and encrypted with AES-256-GCM under a key derived
from the passphrase with PBKDF2-HMAC-SHA256 (600 000 iterations by default, OWASP's 2023
figure for this KDF), a random 16-byte salt and a random 12-byte nonce per publish. The
shell page asks for the passphrase, derives the same key with WebCrypto, decrypts, and
writes the portal into the page with document.write, so the portal's own inline filter
script runs as usual. Exports are served from Blob URLs made from the decrypted bytes:
the published folder holds no export at all, so a link to one (CloudFront policies cover
the whole folder) opens nothing. After `idle_minutes` without input the page writes the
shell back over itself, dropping the portal's DOM and listeners.

The shell's text is generic: it names neither the agency nor the client.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from markupsafe import Markup
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from bridge.errors import ConfigError
from bridge.passphrase import MIN_LENGTH, normalize_passphrase
from bridge.publisher import RenderedFile

INDEX = "index.html"
DEFAULT_ITERATIONS = 600_000
# Bound into every ciphertext, so a blob made for another purpose or format never decrypts here.
AAD = b"clearhours-portal-v1"
SALT_BYTES, NONCE_BYTES = 16, 12
_BUNDLE_RE = '<script type="application/json" id="locked-data">'


class WrongPassphrase(Exception):
    """The passphrase does not open this page (or the page was altered)."""


@dataclass(frozen=True)
class Unlocked:
    html: str
    files: list[RenderedFile]


def derive_key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return kdf.derive(normalize_passphrase(passphrase).encode("utf-8"))


def _plain(f: RenderedFile) -> bytes:
    return gzip.decompress(f.data) if f.content_encoding == "gzip" else f.data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("publishers", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def protect(files: Sequence[RenderedFile], passphrase: str, *, iterations: int = DEFAULT_ITERATIONS,
            idle_minutes: float = 30) -> list[RenderedFile]:
    """Replace a rendered portal by a single encrypted index.html.

    Args:
        files: the portal as rendered (must include index.html).
        passphrase: what the client types; NFC-normalized and trimmed on both sides.
        iterations: PBKDF2 iterations; the browser repeats them on every unlock.
        idle_minutes: the decrypted page locks itself after this long without input.

    Raises:
        ConfigError: no index.html, a passphrase shorter than MIN_LENGTH, or bad settings.
    """
    phrase = normalize_passphrase(passphrase)
    if len(phrase) < MIN_LENGTH:
        raise ConfigError(f"a portal passphrase needs at least {MIN_LENGTH} characters")
    if iterations < 1 or idle_minutes <= 0:
        raise ConfigError("protect: iterations and idle_minutes must be positive")
    index = [f for f in files if f.path == INDEX]
    if len(index) != 1:
        raise ConfigError("protect: the rendered portal has no index.html")
    payload = {
        "html": _plain(index[0]).decode("utf-8"),
        "files": [
            {"path": f.path, "name": f.download_name or f.path.rsplit("/", 1)[-1],
             "type": f.content_type, "data": _b64(_plain(f))}
            for f in files if f.path != INDEX
        ],
    }
    packed = gzip.compress(json.dumps(payload, separators=(",", ":")).encode("utf-8"), mtime=0)
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(derive_key(phrase, salt, iterations)).encrypt(nonce, packed, AAD)
    bundle = {
        "v": 1, "kdf": "PBKDF2-SHA256", "iterations": iterations, "salt": _b64(salt), "nonce": _b64(nonce),
        "idle_seconds": max(1, round(idle_minutes * 60)), "ciphertext": _b64(ciphertext),
    }
    # base64 and numbers only, so nothing here can close the <script> element
    page = _env().get_template("protect/shell.html.j2").render(bundle=Markup(json.dumps(bundle)))
    return [RenderedFile(INDEX, page.encode("utf-8"), "text/html; charset=utf-8")]


def read_bundle(shell: bytes) -> dict[str, Any]:
    """The encryption parameters and ciphertext carried by a shell page."""
    text = shell.decode("utf-8")
    start = text.index(_BUNDLE_RE) + len(_BUNDLE_RE)
    return json.loads(text[start:text.index("</script>", start)])


def unprotect(shell: bytes, passphrase: str) -> Unlocked:
    """Decrypt a shell page as the browser does (tests, and checking a published page).

    Raises:
        WrongPassphrase: the passphrase is wrong or the page was tampered with.
    """
    b = read_bundle(shell)
    key = derive_key(passphrase, base64.b64decode(b["salt"]), int(b["iterations"]))
    try:
        packed = AESGCM(key).decrypt(base64.b64decode(b["nonce"]), base64.b64decode(b["ciphertext"]), AAD)
    except InvalidTag:
        raise WrongPassphrase("the passphrase does not open this page") from None
    payload = json.loads(gzip.decompress(packed))
    files = [RenderedFile(f["path"], base64.b64decode(f["data"]), f["type"], download_name=f["name"])
             for f in payload["files"]]
    return Unlocked(payload["html"], files)
