"""Invitations through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import pytest

from bridge import publishing
from bridge.config import SmtpConfig
from bridge.errors import ConfigError, PublishError
from bridge.models import PortalLink
from publishers import mail
from tests.publishers.conftest import free_port, make_config

URL = "https://portals.example/portals/tok/index.html?X-Amz-Signature=abc&X-Amz-Expires=604800" + "&x=" + "y" * 300
EXPIRES = dt.datetime(2025, 3, 27, 11, 0, tzinfo=dt.timezone.utc)
NOW = dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.timezone.utc)


def with_link(store, key: str = "acme", url: str | None = URL, expires_at: dt.datetime | None = EXPIRES) -> None:
    with store.session() as s:
        s.add(PortalLink(client_key=key, token="t" * 32, url=url, expires_at=expires_at))
        s.commit()


def config_for(server, **smtp):
    host, port, _ = server
    cfg = make_config("file://./site")
    cfg.smtp = SmtpConfig(host=host, port=port, sender="Northwind <portal@northwind.test>", **smtp)
    return cfg


def do_invite(store, cfg, to, **kw):
    return publishing.invite(store, cfg, "acme", to, compose=mail.invitation,
                             send=lambda m: mail.send_message(cfg.smtp, m), now=NOW, **kw)


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.content, policy=policy.default)


def test_invitation_arrives_with_link_expiry_and_contact(store, smtp_server) -> None:
    cfg = config_for(smtp_server)
    with_link(store)
    inv, _ = do_invite(store, cfg, "Boss <BOSS@acme.test>")
    assert inv.sent and inv.to == "boss@acme.test"
    (env,) = smtp_server[2]
    assert env.rcpt_tos == ["boss@acme.test"]
    msg = parsed(env)
    assert msg["Subject"] == "Your project portal from Northwind Studio"
    assert msg["From"] == "Northwind <portal@northwind.test>"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert URL in text and URL.replace("&", "&amp;") in html
    # expiry in the agency's zone (Europe/Berlin is UTC+1 in March)
    assert "Thursday 27 March 2025, 12:00 (Europe/Berlin)" in text
    assert "Pat <pat@northwind.test>" in text and "Pat &lt;pat@northwind.test&gt;" in html
    assert "hours worked" in text and "rates" not in text  # rates hidden by default
    events = [e for e in publishing.audit_events(store, "acme") if e.action == "invitation_sent"]
    assert len(events) == 1


def test_addresses_outside_the_clients_contacts_get_nothing(store, smtp_server) -> None:
    cfg = config_for(smtp_server)
    with_link(store)
    for to in ("boss@globex.test", "someone@acme.test", "not an address"):
        with pytest.raises(ConfigError, match="not one of its contacts"):
            do_invite(store, cfg, to)
    assert smtp_server[2] == []


def test_dry_run_builds_but_does_not_send(store, smtp_server) -> None:
    cfg = config_for(smtp_server)
    with_link(store)
    inv, msg = do_invite(store, cfg, "boss@acme.test", dry_run=True)
    assert not inv.sent and URL in msg.get_body(("plain",)).get_content()
    assert smtp_server[2] == []


def test_no_link_or_expired_link_is_refused(store, smtp_server) -> None:
    cfg = config_for(smtp_server)
    with pytest.raises(PublishError, match="no link yet"):
        do_invite(store, cfg, "boss@acme.test")
    with_link(store, expires_at=NOW - dt.timedelta(minutes=1))
    with pytest.raises(PublishError, match="expired"):
        do_invite(store, cfg, "boss@acme.test")
    assert smtp_server[2] == []


def test_login_uses_credentials_from_the_environment(monkeypatch) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    seen, received = [], []

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(envelope)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    port = free_port()
    ctl = Controller(Sink(), hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False)
    ctl.start()
    try:
        smtp = SmtpConfig(host="127.0.0.1", port=port, user_env="SMTP_USER", password_env="SMTP_PASS")
        with pytest.raises(ConfigError, match="SMTP_USER is not set"):
            mail.send_mail(smtp, ["a@b.test"], "s", "t")
        monkeypatch.setenv("SMTP_USER", "agent")
        monkeypatch.setenv("SMTP_PASS", "wrong")
        with pytest.raises(PublishError, match="refused the login") as err:
            mail.send_mail(smtp, ["a@b.test"], "s", "t")
        assert "wrong" not in str(err.value)
        monkeypatch.setenv("SMTP_PASS", "s3cret")
        mail.send_mail(smtp, ["a@b.test"], "Budget alert", "90% used", "<p>90% used</p>")
    finally:
        ctl.stop()
    assert seen[-1] == (b"agent", b"s3cret")
    assert len(received) == 1 and received[0].rcpt_tos == ["a@b.test"]


def test_unreachable_server_is_a_clear_error() -> None:
    smtp = SmtpConfig(host="127.0.0.1", port=free_port())
    with pytest.raises(PublishError, match=r"sending mail through 127\.0\.0\.1:\d+ failed"):
        mail.send_mail(smtp, ["a@b.test"], "s", "t")


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 that the client trusts through SSL_CERT_FILE."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_starttls_and_implicit_tls_verify_the_server(security, tmp_path, monkeypatch) -> None:
    import ssl

    from aiosmtpd.controller import Controller

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    received = []

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            received.append(server.transport.get_extra_info("ssl_object") is not None)
            return "250 OK"

    port = free_port()
    kw = {"tls_context": server_ctx, "require_starttls": True} if security == "starttls" else {"ssl_context": server_ctx}
    ctl = Controller(Sink(), hostname="127.0.0.1", port=port, **kw)
    ctl.start()
    try:
        smtp = SmtpConfig(host="127.0.0.1", port=port, security=security)
        # not trusted yet: the certificate is refused, nothing is sent
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
        with pytest.raises(PublishError, match="failed: SSLCertVerificationError"):
            mail.send_mail(smtp, ["a@b.test"], "s", "t")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        mail.send_mail(smtp, ["a@b.test"], "Portal", "link")
    finally:
        ctl.stop()
    assert received == [True]


def test_refreshed_links_are_sent_again_to_those_invited_before(store, smtp_server) -> None:
    cfg = config_for(smtp_server)
    cfg.clients[0].contacts = ["boss@acme.test", "cfo@acme.test"]
    with_link(store)
    do_invite(store, cfg, "boss@acme.test")
    # `bridge run` renewed the link: a new URL and expiry in the store
    fresh_url = URL.replace("abc", "fresh")
    with store.session() as s:
        row = s.get(PortalLink, "acme")
        row.url, row.expires_at = fresh_url, EXPIRES + dt.timedelta(days=6)
        s.add(row)
        s.commit()
    sent = publishing.reinvite(store, cfg, ["acme", "globex"], compose=mail.invitation,
                               send=lambda m: mail.send_message(cfg.smtp, m), now=NOW + dt.timedelta(days=6))
    assert [i.to for i in sent] == ["boss@acme.test"]  # never the uninvited cfo, nor globex
    first, second = smtp_server[2]
    assert second.rcpt_tos == ["boss@acme.test"]
    assert fresh_url in parsed(second).get_body(("plain",)).get_content()
    # a contact removed from the config is not written to again; reinvite = false stops it all
    cfg.clients[0].contacts = ["cfo@acme.test"]
    assert publishing.reinvite(store, cfg, ["acme"], compose=mail.invitation, send=lambda m: None) == []
    cfg.clients[0].contacts, cfg.clients[0].reinvite = ["boss@acme.test"], False
    assert publishing.reinvite(store, cfg, ["acme"], compose=mail.invitation, send=lambda m: None) == []
