"""Mail set-up: off until configured, `bridge mail --test`, no file:// invitations, passphrase note."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge import publishing
from bridge.alerts import channels_configured
from bridge.cli import cli
from bridge.config import SmtpConfig, load_config, parse_config
from bridge.errors import ConfigError
from bridge.models import PortalLink
from publishers import mail
from tests.publishers.conftest import make_config

ROOT = Path(__file__).resolve().parents[2]


def test_mail_is_off_until_smtp_host_is_set_and_the_example_config_sends_nothing() -> None:
    example = load_config(ROOT / "config" / "bridge.example.toml")
    assert example.smtp.host is None and not example.smtp.configured
    assert not channels_configured(example)  # `bridge run` tries no mail at all: nothing to fail
    with pytest.raises(ConfigError, match=r"mail is not set up: set \[smtp\] host .* `bridge mail --test"):
        mail.send_mail(example.smtp, ["ops@martin.example"], "s", "t")
    cfg = parse_config({"agency": {"email": "ops@x.test"}, "smtp": {"host": "127.0.0.1"}})
    assert channels_configured(cfg)


def test_bridge_mail_test_delivers_through_smtp(smtp_server, tmp_path: Path) -> None:
    host, port, received = smtp_server
    conf = tmp_path / "bridge.toml"
    conf.write_text(f'[agency]\nname = "Northwind"\n[smtp]\nhost = "{host}"\nport = {port}\nsender = "portal@northwind.test"\n')
    out = CliRunner().invoke(cli, ["-c", str(conf), "mail", "--test", "ops@northwind.test"])
    assert out.exit_code == 0, out.output
    assert f"test message sent to ops@northwind.test through {host}:{port} (none)" in out.output
    [env] = received
    msg = email.message_from_bytes(env.content, policy=policy.default)
    assert msg["To"] == "ops@northwind.test" and msg["Subject"] == "clearhours: test message from Northwind"


def test_bridge_mail_test_without_smtp_says_how_to_set_it_up(tmp_path: Path) -> None:
    conf = tmp_path / "bridge.toml"
    conf.write_text('[agency]\nname = "Northwind"\n')
    out = CliRunner().invoke(cli, ["-c", str(conf), "mail", "--test", "ops@northwind.test"])
    assert out.exit_code == 1 and "mail is not set up: set [smtp] host" in out.output


def _link(store, url: str) -> None:
    with store.session() as s:
        s.add(PortalLink(client_key="acme", token="t" * 32, url=url, expires_at=None))
        s.commit()


def test_invite_refuses_a_file_link_unless_allowed(store) -> None:
    cfg = make_config("file://./site")
    cfg.smtp = SmtpConfig(host="127.0.0.1", port=9)
    _link(store, "file:///srv/site/tok/index.html")
    sent = []
    with pytest.raises(ConfigError, match="a file on this machine .* pass --allow-local"):
        publishing.invite(store, cfg, "acme", "boss@acme.test", compose=mail.invitation, send=sent.append)
    inv, _ = publishing.invite(store, cfg, "acme", "boss@acme.test", compose=mail.invitation, send=sent.append,
                               allow_local=True)
    assert inv.sent and len(sent) == 1


def test_a_passphrase_portals_invitation_says_the_passphrase_comes_separately(store) -> None:
    cfg = make_config("s3://b/p")
    url = "https://portals.example/p/tok/index.html?X-Amz-Signature=abc"
    client = cfg.client("acme")
    plain = mail.invitation(cfg, client, url, None, "boss@acme.test")
    assert "passphrase" not in plain.get_body(("plain",)).get_content()
    client.passphrase = True
    msg = mail.invitation(cfg, client, url, None, "boss@acme.test")
    text = msg.get_body(("plain",)).get_content()
    assert ("The portal asks for a passphrase. It is not in this e-mail: we send it to you separately, "
            "by phone or another message.") in text
    assert "passphrase" in msg.get_body(("html",)).get_content()
