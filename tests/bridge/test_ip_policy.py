"""IP allow-lists as bucket-policy statements: valid, one client's folder each, merged safely."""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import cli
from bridge.config import parse_config
from bridge.errors import ConfigError
from bridge.ip_policy import SID_PREFIX, apply_policy, bucket_policy, current_policy, merge_policy, sid_for, validate_cidrs
from bridge.publishing import ensure_link
from tests.publishers.conftest import aws_env, bucket, localstack  # noqa: F401 - fixtures

TOKENS = {k: secrets.token_urlsafe(24) for k in ("acme", "globex", "in-itech", "in_itech")}


def _config(**allow: list[str]):
    return parse_config({
        "sources": [{"name": "h", "kind": "harvest"}],
        "clients": [{"key": k, "name": k.title(), "sources": {"h": [str(i)]}, "allow_ips": allow.get(k.replace("-", "_"), [])}
                    for i, k in enumerate(["acme", "globex", "in-itech"])],
        "publish": {"target": "s3://bkt/portals"},
    })


def denied(policy: dict[str, Any], key: str, ip: str, auth_type: str = "REST-QUERY-STRING") -> bool:
    """S3's evaluation of our statement shapes: a matching Deny whose every condition holds."""
    arn = f"arn:aws:s3:::bkt/{key}"
    for st in policy["Statement"]:
        if st["Effect"] != "Deny" or st["Action"] != "s3:GetObject":
            continue
        if not fnmatch.fnmatchcase(arn, st["Resource"]):
            continue
        cond = st["Condition"]
        outside = all(ipaddress.ip_address(ip) not in ipaddress.ip_network(c)
                      for c in cond["NotIpAddress"]["aws:SourceIp"])
        not_header = auth_type != cond["StringNotEquals"]["s3:authType"]
        if outside and not_header:
            return True
    return False


def test_one_deny_per_restricted_client_scoped_to_its_folder() -> None:
    cfg = _config(acme=["203.0.113.0/24", "2001:db8::/32"], in_itech=["198.51.100.7"])
    doc = bucket_policy(cfg, "bkt", "portals/", TOKENS)
    json.loads(json.dumps(doc))  # plain JSON
    assert doc["Version"] == "2012-10-17"
    assert [s["Sid"] for s in doc["Statement"]] == [sid_for("acme"), sid_for("in-itech")]
    for st in doc["Statement"]:
        assert re.fullmatch(r"[A-Za-z0-9]+", st["Sid"]) and st["Sid"].startswith(SID_PREFIX)
        assert (st["Effect"], st["Principal"], st["Action"]) == ("Deny", "*", "s3:GetObject")
    acme, initech = doc["Statement"]
    assert acme["Resource"] == f"arn:aws:s3:::bkt/portals/{TOKENS['acme']}/*"
    assert acme["Condition"]["NotIpAddress"]["aws:SourceIp"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert initech["Condition"]["NotIpAddress"]["aws:SourceIp"] == ["198.51.100.7/32"]

    a, g = TOKENS["acme"], TOKENS["globex"]
    assert denied(doc, f"portals/{a}/index.html", "192.0.2.1")
    assert denied(doc, f"portals/{a}/timesheet.csv", "2001:db9::1")
    assert not denied(doc, f"portals/{a}/index.html", "203.0.113.99")
    assert not denied(doc, f"portals/{a}/index.html", "2001:db8::42")
    # the bridge's own SDK calls (header-signed) keep working from anywhere
    assert not denied(doc, f"portals/{a}/.manifest.json", "192.0.2.1", auth_type="REST-HEADER")
    # scoped: other clients, the prefix itself and other prefixes are untouched
    assert not denied(doc, f"portals/{g}/index.html", "192.0.2.1")
    assert not denied(doc, "portals/index.html", "192.0.2.1")
    assert not denied(doc, f"other/{a}/index.html", "192.0.2.1")
    assert not denied(doc, f"portals/{a}x/index.html", "192.0.2.1")


def test_clients_without_allow_ips_or_token_get_no_statement() -> None:
    cfg = _config(acme=["203.0.113.0/24"])
    assert bucket_policy(cfg, "bkt", "", {"globex": TOKENS["globex"]})["Statement"] == []
    doc = bucket_policy(cfg, "bkt", "", TOKENS)
    assert doc["Statement"][0]["Resource"] == f"arn:aws:s3:::bkt/{TOKENS['acme']}/*"


def test_sids_are_distinct_for_keys_that_differ_only_in_punctuation() -> None:
    assert len({sid_for(k) for k in ("in-itech", "in_itech", "initech")}) == 3


@pytest.mark.parametrize(("value", "message"), [
    ("10.1.2.3/24", "did you mean 10.1.2.0/24"),
    ("10.0.0.300", "not an IP address"),
    ("everyone", "not an IP address"),
    ("0.0.0.0/0", "allows every address"),
])
def test_bad_ranges_are_refused_with_advice(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_cidrs([value])
    # caught when the config loads, or at the latest when the policy is built
    with pytest.raises(ConfigError, match="allow_ips"):
        bucket_policy(_config(acme=[value]), "bkt", "p", TOKENS)


def test_cidrs_are_canonical() -> None:
    assert validate_cidrs([" 203.0.113.7 ", "2001:DB8::/32", "203.0.113.7"]) == ["203.0.113.7/32", "2001:db8::/32"]


UNRELATED = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def test_merge_keeps_other_statements_and_replaces_ours() -> None:
    cfg = _config(acme=["203.0.113.0/24"])
    old = bucket_policy(_config(acme=["198.51.100.0/24"], in_itech=["192.0.2.0/24"]), "bkt", "p", TOKENS)
    existing = {"Version": "2012-10-17", "Id": "keep-me", "Statement": [UNRELATED, *old["Statement"]]}
    merged = merge_policy(existing, bucket_policy(cfg, "bkt", "p", TOKENS))
    assert merged is not None
    assert merged["Id"] == "keep-me"
    assert merged["Statement"][0] == UNRELATED
    assert [s["Sid"] for s in merged["Statement"]] == ["DenyInsecureTransport", sid_for("acme")]
    assert merged["Statement"][1]["Condition"]["NotIpAddress"]["aws:SourceIp"] == ["203.0.113.0/24"]
    # a lone statement written as an object, and a policy that ends up empty
    assert merge_policy({"Statement": UNRELATED}, {"Statement": []})["Statement"] == [UNRELATED]
    assert merge_policy({"Statement": old["Statement"]}, {"Statement": []}) is None
    assert merge_policy(None, {"Statement": []}) is None


@pytest.mark.s3
def test_apply_merges_into_the_real_bucket_policy(bucket: str, localstack: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=localstack, region_name="us-east-1")
    unrelated = {**UNRELATED, "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [unrelated]}))
    doc = bucket_policy(_config(acme=["203.0.113.0/24"]), bucket, "portals", TOKENS)
    assert apply_policy(s3, bucket, doc) is True
    stored = current_policy(s3, bucket)
    assert [s["Sid"] for s in stored["Statement"]] == ["DenyInsecureTransport", sid_for("acme")]
    assert apply_policy(s3, bucket, doc) is False  # idempotent
    assert apply_policy(s3, bucket, bucket_policy(_config(), bucket, "portals", TOKENS)) is True
    assert [s["Sid"] for s in current_policy(s3, bucket)["Statement"]] == ["DenyInsecureTransport"]


def test_cli_policy_print_uses_the_stored_tokens(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    (tmp_path / "bridge.toml").write_text(
        f'[store]\nurl = "sqlite:///{db}"\n[publish]\ntarget = "s3://bkt/portals"\n'
        '[[sources]]\nname = "h"\nkind = "harvest"\n'
        '[[clients]]\nkey = "acme"\nname = "Acme"\nsources = { h = ["1"] }\nallow_ips = ["203.0.113.0/24"]\n'
        '[[clients]]\nkey = "globex"\nname = "Globex"\nsources = { h = ["2"] }\nallow_ips = ["192.0.2.0/24"]\n'
    )
    from bridge.store import Store

    store = Store(f"sqlite:///{db}")
    store.migrate()
    token = ensure_link(store, "acme").token
    store.close()
    result = CliRunner().invoke(cli, ["-c", str(tmp_path / "bridge.toml"), "policy", "--print"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["Resource"] for s in doc["Statement"]] == [f"arn:aws:s3:::bkt/portals/{token}/*"]
    assert "globex: has allow_ips but no token yet" in result.stderr


def test_the_publishers_public_bucket_check_accepts_our_statements() -> None:
    """Principal "*" in a Deny is a restriction, not an opening: publishing must not refuse it."""
    from publishers.s3 import public_policy_reason

    doc = bucket_policy(_config(acme=["203.0.113.0/24"]), "bkt", "portals", TOKENS)
    assert doc["Statement"]
    assert public_policy_reason(doc, "bkt", "portals") is None
    # the check is live: the same statement turned into an unconditional Allow is refused
    opened = {**doc["Statement"][0], "Effect": "Allow", "Condition": {}, "Resource": "arn:aws:s3:::bkt/portals/*"}
    assert public_policy_reason({"Statement": [opened]}, "bkt", "portals") is not None
