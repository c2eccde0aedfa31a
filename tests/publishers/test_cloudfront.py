"""CloudFront signed URLs, verified offline the way CloudFront does: decode the policy,
check the RSA-SHA1 signature with the public key, then expiry, IP and resource scope."""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import ipaddress
import json
import secrets
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.config import PublishConfig
from bridge.errors import ConfigError
from publishers.cloudfront import CloudFrontLinks, load_private_key, source_ip
from publishers.s3 import S3Publisher

DOMAIN = "d111111abcdef8.cloudfront.net"
KEY_ID = "K2JCJMDEHXQW5F"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _b64(s: str) -> bytes:
    return base64.b64decode(s.replace("-", "+").replace("_", "=").replace("~", "/"))


def verify(url: str, public_key, *, now: dt.datetime, ip: str) -> dict:
    """CloudFront's checks, offline. Returns the policy; raises on any failure."""
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["Key-Pair-Id"] == KEY_ID
    policy_bytes = _b64(q["Policy"])
    public_key.verify(_b64(q["Signature"]), policy_bytes, padding.PKCS1v15(), hashes.SHA1())
    policy = json.loads(policy_bytes)
    (st,) = policy["Statement"]
    bare = urlunsplit(parts._replace(query=""))
    if not fnmatch.fnmatchcase(bare, st["Resource"]):
        raise PermissionError("resource outside the policy")
    if now.timestamp() >= st["Condition"]["DateLessThan"]["AWS:EpochTime"]:
        raise PermissionError("expired")
    cidr = st["Condition"].get("IpAddress", {}).get("AWS:SourceIp")
    if cidr and ipaddress.ip_address(ip) not in ipaddress.ip_network(cidr):
        raise PermissionError("ip not allowed")
    return policy


def publisher(key, **kw) -> S3Publisher:
    import boto3

    session = boto3.session.Session(aws_access_key_id="AKID", aws_secret_access_key="s", region_name="us-east-1")
    return S3Publisher("bkt", "portals", session=session, endpoint_url="http://127.0.0.1:9",
                       cloudfront=CloudFrontLinks(DOMAIN, KEY_ID, key), **kw)


def test_signed_url_is_valid_scoped_to_the_client_and_expires(key) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    a, b = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    # 30 days: longer than S3 presigning allows, fine for CloudFront
    bound = publisher(key).bind(signed_at=now, expires_in=30 * 86400, allow_ips=["203.0.113.7"])
    url = bound.link(a, "index.html")
    assert url.startswith(f"https://{DOMAIN}/portals/{a}/index.html?")
    policy = verify(url, key.public_key(), now=now, ip="203.0.113.7")
    st = policy["Statement"][0]
    assert st["Resource"] == f"https://{DOMAIN}/portals/{a}/*"
    assert st["Condition"]["DateLessThan"]["AWS:EpochTime"] == int((now + dt.timedelta(days=30)).timestamp())
    assert st["Condition"]["IpAddress"]["AWS:SourceIp"] == "203.0.113.7/32"
    assert bound.expires_at == now + dt.timedelta(days=30)
    # the same signature opens the client's exports (wildcard) ...
    export = bound.link(a, "timesheet.csv")
    q = parse_qs(urlsplit(url).query)
    verify(f"https://{DOMAIN}/portals/{a}/timesheet.csv?" + urlsplit(url).query, key.public_key(), now=now,
           ip="203.0.113.7")
    assert parse_qs(urlsplit(export).query) == q
    # ... but never another client's folder
    with pytest.raises(PermissionError, match="resource"):
        verify(url.replace(f"/{a}/", f"/{b}/"), key.public_key(), now=now, ip="203.0.113.7")
    with pytest.raises(PermissionError, match="expired"):
        verify(url, key.public_key(), now=now + dt.timedelta(days=30), ip="203.0.113.7")
    with pytest.raises(PermissionError, match="ip"):
        verify(url, key.public_key(), now=now, ip="198.51.100.1")


def test_tampering_or_another_key_breaks_the_signature(key) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    url = publisher(key).bind(signed_at=now, expires_in=3600).link(secrets.token_urlsafe(24), "index.html")
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert "IpAddress" not in _b64(q["Policy"]).decode()
    widened = json.loads(_b64(q["Policy"]))
    widened["Statement"][0]["Resource"] = f"https://{DOMAIN}/*"
    forged_policy = base64.b64encode(json.dumps(widened, separators=(",", ":")).encode()).decode()
    forged = url.replace(q["Policy"], forged_policy.replace("+", "-").replace("=", "_").replace("/", "~"))
    with pytest.raises(InvalidSignature):
        verify(forged, key.public_key(), now=now, ip="1.2.3.4")
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidSignature):
        verify(url, other.public_key(), now=now, ip="1.2.3.4")


def test_key_from_env_or_file_and_clear_errors(key, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CF_KEY", pem(key))
    loaded = load_private_key(PublishConfig(cloudfront_private_key_env="CF_KEY"))
    assert loaded.public_key().public_numbers() == key.public_key().public_numbers()
    path = tmp_path / "cf.pem"
    path.write_text(pem(key))
    assert load_private_key(PublishConfig(cloudfront_private_key_file=str(path))).key_size == 2048
    with pytest.raises(ConfigError, match="MISSING_KEY is not set"):
        load_private_key(PublishConfig(cloudfront_private_key_env="MISSING_KEY"))
    path.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM") as err:
        load_private_key(PublishConfig(cloudfront_private_key_file=str(path)))
    assert "not a key" not in str(err.value)
    with pytest.raises(ConfigError, match="cloudfront_key_pair_id"):
        CloudFrontLinks.from_config(PublishConfig(cloudfront_domain=DOMAIN, cloudfront_private_key_env="CF_KEY"))
    assert CloudFrontLinks.from_config(PublishConfig()) is None


def test_one_ip_range_only() -> None:
    assert source_ip([]) is None
    assert source_ip(["2001:db8::1"]) == "2001:db8::1/128"
    assert source_ip(["10.1.2.3/16"]) == "10.1.0.0/16"
    with pytest.raises(ConfigError, match="only one"):
        source_ip(["10.0.0.0/8", "192.0.2.0/24"])
    with pytest.raises(ConfigError, match="not an IP"):
        source_ip(["example.com"])
