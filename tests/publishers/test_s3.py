"""The S3 target against LocalStack S3 on 127.0.0.1, which checks SigV4 query signatures
and expiry for real; plus moto in-process for anonymous access, and pure helpers."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import boto3
import httpx
import pytest
from botocore.credentials import RefreshableCredentials

from bridge import publishing
from bridge.errors import ConfigError, PublishError
from bridge.publisher import RenderedFile
from publishers.s3 import S3Publisher, content_disposition, parse_target, public_policy_reason
from tests.publishers.conftest import fake_render, make_config, no_leaks, views

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@pytest.fixture
def pub(localstack: str, bucket: str) -> S3Publisher:
    return S3Publisher(bucket, "portals", endpoint_url=localstack, region="us-east-1")


def linker(bound: S3Publisher, token: str):
    """The link function publishing hands the renderer: always this client's folder."""
    return lambda _token, path: bound.link(token, path)


def publish(pub: S3Publisher, token: str, expires_in: int = 600, signed_at=None, **kw):
    bound = pub.bind(signed_at=signed_at or utcnow(), expires_in=expires_in)
    view = {"name": kw.get("name", "Acme Ltd"), "hours": kw.get("hours", 10)}
    return bound, bound.publish(token, fake_render(view, linker(bound, token)))


# --- signed links, refused the way AWS refuses them -----------------------------------------


@pytest.mark.s3
def test_presigned_link_serves_the_page_and_its_export(pub: S3Publisher) -> None:
    token = secrets.token_urlsafe(24)
    bound, result = publish(pub, token)
    r = httpx.get(result.url)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-encoding"] == "gzip" and "<h1>Acme Ltd</h1>" in r.text
    assert r.headers["cache-control"] == "no-store, private"
    csv_link = bound.link(token, "timesheet.csv")
    assert csv_link in r.text  # the page carries the export link signed for the same window
    csv = httpx.get(csv_link)
    assert csv.status_code == 200 and csv.text.startswith("week,hours")
    assert csv.headers["content-disposition"] == 'attachment; filename="Acme Ltd hours.csv"'
    assert result.expires_at == bound.signed_at + dt.timedelta(seconds=600)
    assert f"/portals/{token}/index.html?" in result.url


@pytest.mark.s3
def test_expired_tampered_and_moved_links_are_refused(pub: S3Publisher) -> None:
    a, b = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    _, ra = publish(pub, a)
    _, rb = publish(pub, b, name="Globex Ltd")
    assert httpx.get(rb.url).status_code == 200
    # expired: signed 20 s ago for 5 s
    old = pub.bind(signed_at=utcnow() - dt.timedelta(seconds=20), expires_in=5).link(a, "index.html")
    assert httpx.get(old).status_code == 403
    # one hex digit of the signature changed
    sig = ra.url.rsplit("=", 1)[1]
    bad = ra.url[: -len(sig)] + ("0" if sig[0] != "0" else "1") + sig[1:]
    assert httpx.get(bad).status_code == 403
    # a valid link for client A pointed at client B's folder
    moved = ra.url.replace(f"/{a}/", f"/{b}/")
    assert httpx.get(moved).status_code == 403
    # expiry raised without signing again
    assert httpx.get(ra.url.replace("X-Amz-Expires=600", "X-Amz-Expires=3600")).status_code == 403


@pytest.mark.s3
def test_same_window_same_links_so_republish_uploads_nothing(store, localstack, bucket, tmp_path) -> None:
    config = make_config(f"s3://{bucket}/portals", clients=3, endpoint_url=localstack, region="us-east-1")
    target = S3Publisher.from_config(config.publish)
    first = publishing.publish_all(store, config, target, fake_render, build_view=views(), guard=no_leaks)
    assert first.ok and target.stats.objects == 9  # 3 x (export, page, manifest)
    target.stats.objects = 0
    second = publishing.publish_all(store, config, target, fake_render, build_view=views(), guard=no_leaks)
    assert target.stats.objects == 0
    assert [o.uploaded for o in second.outcomes] == [0, 0, 0]
    assert [o.url for o in second.outcomes] == [o.url for o in first.outcomes]
    # one client's figures change: only its export (and its manifest) go up
    third = publishing.publish_all(store, config, target, fake_render,
                                   build_view=views({"globex": {"hours": 42}}), guard=no_leaks)
    assert [o.uploaded for o in third.outcomes] == [0, 1, 0] and target.stats.objects == 2
    # refresh: a new window re-renders pages (new export links) but exports stay put
    target.stats.objects = 0
    later = publishing.utcnow() + dt.timedelta(seconds=2)
    fresh = publishing.publish_all(store, config, target, fake_render, build_view=views({"globex": {"hours": 42}}),
                                   guard=no_leaks, refresh=True, now=later)
    assert [o.uploaded for o in fresh.outcomes] == [1, 1, 1] and target.stats.objects == 6
    assert all(o.link_issued for o in fresh.outcomes)
    assert all(httpx.get(o.url).status_code == 200 for o in fresh.outcomes)


@pytest.mark.s3
def test_interrupted_publish_keeps_old_page_and_next_run_completes(pub: S3Publisher, monkeypatch) -> None:
    token = secrets.token_urlsafe(24)
    bound, first = publish(pub, token, hours=10)
    real_put, calls = bound._put, []

    def dying_put(key, body, **extra):
        calls.append(key)
        if len(calls) == 2:
            raise PublishError("connection reset (injected)")
        real_put(key, body, **extra)

    monkeypatch.setattr(bound, "_put", dying_put)
    changed = fake_render({"name": "Acme Ltd", "hours": 77}, linker(bound, token))
    changed[1] = RenderedFile("index.html", b"<h1>new page</h1>", "text/html")
    with pytest.raises(PublishError):
        bound.publish(token, changed)
    assert calls[0].endswith("/timesheet.csv")  # the export went up first
    r = httpx.get(first.url)
    assert r.status_code == 200 and "<h1>Acme Ltd</h1>" in r.text  # the old page still reads
    monkeypatch.setattr(bound, "_put", real_put)
    done = bound.publish(token, changed)
    # the old manifest still listed the old export hash, so both are redone
    assert done.uploaded == ["timesheet.csv", "index.html"]
    assert httpx.get(done.url).text == "<h1>new page</h1>"
    assert "77" in httpx.get(bound.link(token, "timesheet.csv")).text
    assert bound.publish(token, changed).uploaded == []


@pytest.mark.s3
def test_upload_order_exports_index_deletes_manifest(pub: S3Publisher, monkeypatch) -> None:
    token = secrets.token_urlsafe(24)
    bound = pub.bind(signed_at=utcnow(), expires_in=600)
    bound.publish(token, fake_render({"name": "A", "hours": 1}, linker(bound, token))
                  + [RenderedFile("stale.pdf", b"%PDF", "application/pdf")])
    steps: list[str] = []
    real_put, real_delete = bound._put, bound._delete
    monkeypatch.setattr(bound, "_put", lambda k, b, **e: (steps.append("put " + k.rsplit("/", 1)[1]), real_put(k, b, **e)))
    monkeypatch.setattr(bound, "_delete", lambda keys: (steps.extend("del " + k.rsplit("/", 1)[1] for k in keys),
                                                        real_delete(keys)))
    bound.publish(token, fake_render({"name": "B", "hours": 2}, linker(bound, token)))
    assert steps == ["put timesheet.csv", "put index.html", "del stale.pdf", "put .manifest.json"]


@pytest.mark.s3
def test_stray_objects_from_an_unfinished_publish_are_cleaned(pub: S3Publisher) -> None:
    token = secrets.token_urlsafe(24)
    bound, _ = publish(pub, token)
    pub.client.put_object(Bucket=pub.bucket, Key=f"portals/{token}/leftover.xlsx", Body=b"x")
    result = bound.publish(token, fake_render({"name": "Acme Ltd", "hours": 10}, linker(bound, token)))
    assert result.deleted == ["leftover.xlsx"] and result.uploaded == []


@pytest.mark.s3
def test_revoke_kills_the_old_link_and_issues_a_new_one(store, localstack, bucket) -> None:
    config = make_config(f"s3://{bucket}/portals", endpoint_url=localstack, region="us-east-1")
    target = S3Publisher.from_config(config.publish)
    publishing.publish_all(store, config, target, fake_render, build_view=views(), guard=no_leaks)
    old = publishing.get_link(store, "acme")
    globex = publishing.get_link(store, "globex")
    assert httpx.get(old.url).status_code == 200
    res = publishing.revoke(store, config, "acme", target, fake_render, build_view=views(), guard=no_leaks)
    assert res.removed == 3 and res.old_link_status is not None and res.old_link_status >= 400
    assert httpx.get(old.url).status_code in (403, 404)
    assert httpx.get(res.url).status_code == 200 and old.token not in res.url
    keys = [o["Key"] for o in target.client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if old.token in k]
    assert len([k for k in keys if globex.token in k]) == 3
    assert httpx.get(globex.url).status_code == 200
    assert [e.action for e in publishing.audit_events(store, "acme")][-3:] == ["publish", "link_issued", "link_revoked"]


@pytest.mark.s3
def test_allow_ips_on_plain_s3_are_put_in_the_bucket_policy_for_the_current_token(store, localstack, bucket) -> None:
    config = make_config(f"s3://{bucket}/portals", endpoint_url=localstack, region="us-east-1")
    config.clients[0].allow_ips = ["203.0.113.0/24"]
    target = S3Publisher.from_config(config.publish)
    target.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "SomeoneElses", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket",
         "Resource": f"arn:aws:s3:::{bucket}"}]}))

    def policy() -> dict:
        return json.loads(target.client.get_bucket_policy(Bucket=bucket)["Policy"])

    publishing.publish_all(store, config, target, fake_render, build_view=views(), guard=no_leaks)
    acme, globex = publishing.get_link(store, "acme"), publishing.get_link(store, "globex")
    ours = [st for st in policy()["Statement"] if st["Sid"].startswith("Clearhours")]
    assert len(ours) == 1  # only the client with allow_ips, scoped to its folder alone
    assert ours[0]["Resource"] == f"arn:aws:s3:::{bucket}/portals/{acme.token}/*"
    assert ours[0]["Condition"]["NotIpAddress"]["aws:SourceIp"] == ["203.0.113.0/24"]
    assert globex.token not in json.dumps(policy())
    # a revoke moves the statement to the new token at once; other statements stay
    res = publishing.revoke(store, config, "acme", target, fake_render, build_view=views(), guard=no_leaks)
    new = publishing.get_link(store, "acme").token
    ours = [st for st in policy()["Statement"] if st["Sid"].startswith("Clearhours")]
    assert [st["Resource"] for st in ours] == [f"arn:aws:s3:::{bucket}/portals/{new}/*"]
    assert any(st["Sid"] == "SomeoneElses" for st in policy()["Statement"])
    assert res.url


# --- nothing public ---------------------------------------------------------------------


@pytest.mark.s3
def test_objects_and_bucket_carry_no_public_grant(pub: S3Publisher) -> None:
    token = secrets.token_urlsafe(24)
    publish(pub, token)
    pub.check()
    for key in (f"portals/{token}/index.html", f"portals/{token}/timesheet.csv", f"portals/{token}/.manifest.json"):
        grants = pub.client.get_object_acl(Bucket=pub.bucket, Key=key)["Grants"]
        assert grants and all("URI" not in g["Grantee"] for g in grants)
        assert {g["Permission"] for g in grants} == {"FULL_CONTROL"}
    assert all("URI" not in g["Grantee"] for g in pub.client.get_bucket_acl(Bucket=pub.bucket)["Grants"])


@pytest.mark.s3
def test_check_refuses_a_public_policy_or_acl(pub: S3Publisher) -> None:
    # new buckets come with Block Public Access on (as on AWS since 2023); take it off
    pub.client.delete_public_access_block(Bucket=pub.bucket)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{pub.bucket}/*"}]}
    pub.client.put_bucket_policy(Bucket=pub.bucket, Policy=json.dumps(policy))
    with pytest.raises(PublishError, match=f"{pub.bucket}.*anyone read objects under 'portals'"):
        pub.check()
    # Block Public Access neutralises the policy, so publishing is safe again
    pub.client.put_public_access_block(Bucket=pub.bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    pub.check()
    pub.client.delete_public_access_block(Bucket=pub.bucket)
    pub.client.delete_bucket_policy(Bucket=pub.bucket)
    pub.client.put_bucket_acl(Bucket=pub.bucket, ACL="public-read")
    with pytest.raises(PublishError, match="ACL grants READ to AllUsers"):
        pub.check()


def test_policy_analysis_is_scoped_to_the_prefix() -> None:
    def pol(**st):
        return {"Statement": [{"Effect": "Allow", "Principal": "*", **st}]}

    b = "bkt"
    assert public_policy_reason(None, b, "portals") is None
    assert public_policy_reason(pol(Action="s3:GetObject", Resource="arn:aws:s3:::bkt/assets/*"), b, "portals") is None
    assert public_policy_reason(pol(Action="s3:GetObject", Resource="arn:aws:s3:::bkt/portals/*"), b, "portals")
    assert public_policy_reason(pol(Action=["s3:Get*"], Resource=["arn:aws:s3:::bkt/*"]), b, "portals")
    assert "list" in public_policy_reason(pol(Action="s3:ListBucket", Resource="arn:aws:s3:::bkt"), b, "portals")
    assert public_policy_reason(pol(Action="*", Resource="*", Principal={"AWS": "*"}), b, "")
    # a Condition does not make "everyone" private: a Referer anyone can send, any address range
    for cond in ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
                 {"StringLike": {"aws:Referer": "https://portal.example/*"}}):
        why = public_policy_reason(pol(Action="s3:GetObject", Resource="arn:aws:s3:::bkt/*", Condition=cond), b, "p")
        assert why is not None and "does not make it private" in why
    listing = public_policy_reason(pol(Action="s3:ListBucket", Resource="arn:aws:s3:::bkt",
                                       Condition={"StringLike": {"aws:Referer": "x"}}), b, "p")
    assert listing is not None and "aws:Referer" in listing
    named = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/cdn"},
                            "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}]}
    assert public_policy_reason(named, b, "portals") is None


def test_anonymous_get_is_refused_by_moto(monkeypatch) -> None:
    """LocalStack does not enforce ACLs; moto in-process does, for the unsigned-GET check."""
    moto = pytest.importorskip("moto")
    import requests

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with moto.mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="private-portals")
        p = S3Publisher("private-portals", "portals", region="us-east-1")
        token = secrets.token_urlsafe(24)
        p.bind(signed_at=utcnow(), expires_in=600).publish(token, fake_render({"name": "A"}, linker(p, token)))
        url = f"https://private-portals.s3.amazonaws.com/portals/{token}/index.html"
        assert requests.get(url).status_code == 403
        assert requests.get(p.bind(signed_at=utcnow(), expires_in=600).link(token, "index.html")).status_code == 200


# --- expiry limits and signing ---------------------------------------------------------------


def offline_publisher(**kw) -> S3Publisher:
    session = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                                    region_name="eu-west-1")
    return S3Publisher("bkt", "portals", endpoint_url="http://127.0.0.1:9", session=session, **kw)


def test_expiry_over_seven_days_is_refused() -> None:
    p = offline_publisher()
    p.bind(signed_at=utcnow(), expires_in=604800)
    with pytest.raises(ConfigError, match="604800 s = 7 days"):
        p.bind(signed_at=utcnow(), expires_in=604801)


def test_temporary_credentials_bound_the_link_lifetime(monkeypatch) -> None:
    p = offline_publisher()
    expiry = utcnow() + dt.timedelta(hours=1)
    creds = RefreshableCredentials.create_from_metadata(
        metadata={"access_key": "ASIA", "secret_key": "s", "token": "session-token",
                  "expiry_time": expiry.isoformat()},
        refresh_using=lambda: None, method="sts")
    monkeypatch.setattr(p.session, "get_credentials", lambda: creds)
    p.bind(signed_at=utcnow(), expires_in=1800)
    with pytest.raises(ConfigError, match="temporary AWS credentials expire"):
        p.bind(signed_at=utcnow(), expires_in=7200)


def test_pinned_signature_equals_botocores_own(monkeypatch) -> None:
    import botocore.auth

    at = dt.datetime(2025, 3, 20, 12, 0, 0, tzinfo=dt.timezone.utc)
    p = offline_publisher()
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: at.replace(tzinfo=None))
    theirs = p.client.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "portals/t/ä b.html"},
                                             ExpiresIn=900)
    monkeypatch.undo()
    ours = p.bind(signed_at=at, expires_in=900).link("t", "ä b.html")
    assert ours == theirs
    assert p.bind(signed_at=at, expires_in=900).link("t", "ä b.html") == ours  # deterministic


def test_retry_config_and_target_parsing() -> None:
    p = offline_publisher()
    assert p.client.meta.config.retries["mode"] == "standard"
    assert p.client.meta.config.retries["total_max_attempts"] == 6  # 5 retries after the first try
    assert parse_target("s3://bkt/a/b/") == ("bkt", "a/b")
    assert parse_target("s3://bkt") == ("bkt", "")
    with pytest.raises(ConfigError):
        parse_target("s3:///nobucket")


def test_content_disposition_rfc6266_and_5987() -> None:
    assert content_disposition("Hours March.csv") == 'attachment; filename="Hours March.csv"'
    assert content_disposition('a"b.csv') == "attachment; filename=\"a_b.csv\"; filename*=UTF-8''a%22b.csv"
    assert content_disposition("Zeitübersicht März.xlsx") == (
        "attachment; filename=\"Zeit_bersicht M_rz.xlsx\"; filename*=UTF-8''Zeit%C3%BCbersicht%20M%C3%A4rz.xlsx")


@pytest.mark.s3
def test_sse_setting_is_sent(localstack: str, bucket: str) -> None:
    p = S3Publisher(bucket, "", endpoint_url=localstack, region="us-east-1", sse="AES256")
    token = secrets.token_urlsafe(24)
    p.bind(signed_at=utcnow(), expires_in=60).publish(token, fake_render({"name": "A"}, linker(p, token)))
    head = p.client.head_object(Bucket=bucket, Key=f"{token}/index.html")
    assert head["ServerSideEncryption"] == "AES256"


def test_sse_kms_sends_the_key_id_and_never_an_acl(monkeypatch) -> None:
    p = offline_publisher(sse="aws:kms", kms_key_id="arn:aws:kms:eu-west-1:111122223333:key/abc")
    sent = []
    monkeypatch.setattr(p.client, "put_object", lambda **kw: sent.append(kw))
    p._upload("portals/t/index.html", RenderedFile("index.html", b"<p>x</p>", "text/html"), "h")
    p._upload("portals/t/a.csv", RenderedFile("a.csv", b"a", "text/csv", download_name="a.csv"), "h2")
    for kw in sent:
        assert kw["ServerSideEncryption"] == "aws:kms"
        assert kw["SSEKMSKeyId"] == "arn:aws:kms:eu-west-1:111122223333:key/abc"
        assert not any(k.startswith(("ACL", "Grant")) for k in kw)
        assert kw["CacheControl"] == "no-store, private"
    import gzip

    assert sent[0]["ContentEncoding"] == "gzip" and gzip.decompress(sent[0]["Body"]) == b"<p>x</p>"
    assert "ContentEncoding" not in sent[1] and sent[1]["ContentDisposition"] == 'attachment; filename="a.csv"'
