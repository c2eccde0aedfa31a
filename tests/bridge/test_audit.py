"""The audit trail: real-format S3 and CloudFront log lines, attribution by token, idempotent ingestion."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import select

from bridge.audit import (
    AccessRecord,
    events,
    ingest,
    ingest_object,
    parse_cloudfront,
    parse_log,
    parse_s3_line,
    record,
    token_fingerprint,
)
from bridge.cli import cli
from bridge.models import AuditEvent, PortalLink
from bridge.store import Store
from tests.publishers.conftest import aws_env, bucket, localstack  # noqa: F401 - fixtures

UTC = dt.timezone.utc
OWNER = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
CURRENT, REVOKED, OTHER = (secrets.token_urlsafe(24) for _ in range(3))


def s3_line(key: str, *, status: int = 200, op: str = "REST.GET.OBJECT", ip: str = "203.0.113.9",
            when: str = "06/Feb/2025:00:00:38 +0000", ua: str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0",
            error: str = "-", auth: str = "QueryString", request_id: str | None = None) -> str:
    rid = request_id or secrets.token_hex(8).upper()
    return (
        f'{OWNER} portals-bucket [{when}] {ip} - {rid} {op} {key} '
        f'"GET /{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef HTTP/1.1" {status} {error} '
        f'3194 3194 21 20 "-" "{ua}" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= '
        f'SigV4 ECDHE-RSA-AES128-GCM-SHA256 {auth} portals-bucket.s3.eu-central-1.amazonaws.com TLSv1.3 - -'
    )


def _store_with_tokens(store: Store) -> Store:
    with store.session() as s:
        s.add(PortalLink(client_key="acme", token=CURRENT))
        s.commit()
    # a revoked token stays attributable through its fingerprint in the revocation event
    record(store, "link_revoked", client_key="acme", at=dt.datetime(2025, 1, 1, tzinfo=UTC), detail={"old_token_fp": token_fingerprint(REVOKED)})
    return store


# --- parsing -----------------------------------------------------------------------------


def test_s3_line_fields() -> None:
    rec = parse_s3_line(s3_line(f"portals/{CURRENT}/Acme%20report.pdf", ua='curl/8.5 \\"quoted\\"',
                                when="06/Feb/2025:01:00:38 +0100", status=206))
    assert rec == AccessRecord(
        at=dt.datetime(2025, 2, 6, 0, 0, 38, tzinfo=UTC), remote_ip="203.0.113.9", method="GET",
        key=f"portals/{CURRENT}/Acme report.pdf", status=206, user_agent='curl/8.5 "quoted"',
        request_id=rec.request_id, error_code=None, internal=False,
    )
    assert rec.request_id and len(rec.request_id) == 16


def test_s3_bucket_operations_are_not_object_requests() -> None:
    line = s3_line("-", op="REST.GET.BUCKET").replace('"GET /-?', '"GET /?list-type=2&')
    assert parse_s3_line(line) is None


@pytest.mark.parametrize("line", [
    "",
    "garbage",
    s3_line("k")[:120],  # truncated mid-line, as a partial delivery would be
    s3_line("k", when="31/Foo/2025:00:00:38 +0000"),
    s3_line("k", op="NOT-AN-OP"),
    s3_line("k").replace(" 200 - 3194", " OK - 3194"),
])
def test_malformed_s3_lines_are_counted_not_fatal(line: str) -> None:
    good = s3_line(f"portals/{CURRENT}/index.html")
    result = parse_log(f"{good}\n{line}\n{good}\n".encode(), "s3")
    assert len(result.records) == 2
    assert result.malformed == (1 if line.strip() else 0)


CF_HEADER = (
    "#Version: 1.0\n"
    "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol "
    "cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version "
    "fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type "
    "sc-content-len sc-range-start sc-range-end\n"
)


def cf_line(path: str, *, status: int = 200, ip: str = "198.51.100.23", t: str = "2025-02-06\t10:15:02",
            ua: str = "Mozilla/5.0%20(Macintosh;%20Intel%20Mac%20OS%20X%2010_15_7)%20Safari/605.1.15") -> str:
    fields = [*t.split("\t"), "FRA56-P7", "5123", ip, "GET", "d111111abcdef8.cloudfront.net", path, str(status), "-",
              ua, "Policy=eyJ...&Signature=abc~&Key-Pair-Id=K2JCJMDEHXQW5F", "-",
              "Miss" if status < 400 else "Error", secrets.token_urlsafe(20), "portal.example.com", "https", "412",
              "0.012", "-", "TLSv1.3", "TLS_AES_128_GCM_SHA256", "Miss", "HTTP/2.0", "-", "-", "51234", "0.011",
              "Miss", "text/html", "5123", "-", "-"]
    return "\t".join(fields)


def test_cloudfront_log_with_headers() -> None:
    text = CF_HEADER + cf_line(f"/portals/{CURRENT}/index.html") + "\n" + cf_line(
        f"/portals/{CURRENT}/timesheet.csv", status=403) + "\n"
    result = parse_cloudfront(text.splitlines())
    assert result.malformed == 0
    first, second = result.records
    assert first.at == dt.datetime(2025, 2, 6, 10, 15, 2, tzinfo=UTC)
    assert (first.remote_ip, first.method, first.key, first.status) == (
        "198.51.100.23", "GET", f"portals/{CURRENT}/index.html", 200)
    assert first.user_agent == "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1.15"
    assert second.status == 403


def test_cloudfront_malformed_lines_and_custom_field_order() -> None:
    text = (
        "#Version: 1.0\n#Fields: c-ip date time cs-method cs-uri-stem sc-status\n"
        f"192.0.2.5\t2025-02-06\t10:00:00\tGET\t/p/{CURRENT}/index.html\t304\n"
        "192.0.2.5\t2025-02-06\n"  # cut short
        f"192.0.2.5\tyesterday\t10:00:00\tGET\t/p/{CURRENT}/index.html\t200\n"
        f"192.0.2.5\t2025-02-06\t10:00:00\tGET\t/p/{CURRENT}/index.html\t-\n"
    )
    result = parse_log(gzip.compress(text.encode()), "cloudfront")  # delivered gzipped
    assert result.malformed == 3
    (rec,) = result.records
    assert (rec.remote_ip, rec.status, rec.user_agent) == ("192.0.2.5", 304, None)


# --- ingestion ---------------------------------------------------------------------------


def _log() -> bytes:
    return "\n".join([
        s3_line(f"portals/{CURRENT}/index.html", ip="203.0.113.9"),
        s3_line(f"portals/{CURRENT}/index.html", status=403, error="AccessDenied", ip="192.0.2.77"),
        s3_line(f"portals/{REVOKED}/index.html", status=404, error="NoSuchKey", ip="192.0.2.78"),
        s3_line(f"portals/{CURRENT}/index.html", status=304),
        s3_line(f"portals/{CURRENT}/index.html", op="REST.PUT.OBJECT", auth="AuthHeader"),  # the bridge publishing
        s3_line(f"portals/{CURRENT}/.manifest.json", auth="AuthHeader"),  # the bridge reading its manifest
        s3_line(f"portals/{OTHER}/index.html"),  # a token we never had
        "this line is not a log line",
    ]).encode()


def _access(store: Store) -> list[AuditEvent]:
    return [e for e in events(store) if e.action == "access"]


def test_ingest_attributes_requests_and_is_idempotent(store: Store) -> None:
    _store_with_tokens(store)
    stats = ingest_object(store, "logs/2025-02-06-00-00-38-ABCDEF", _log(), "s3")
    assert (stats.events, stats.malformed, stats.unattributed, stats.internal) == (4, 1, 1, 2)
    rows = _access(store)
    assert [(e.client_key, e.object_key, e.status, e.link_valid) for e in rows] == [
        ("acme", "index.html", 200, True), ("acme", "index.html", 403, False),
        ("acme", "index.html", 404, False), ("acme", "index.html", 304, True)]
    assert rows[0].remote_ip == "203.0.113.9" and rows[0].user_agent.startswith("Mozilla/5.0")
    assert rows[0].at == dt.datetime(2025, 2, 6, 0, 0, 38, tzinfo=UTC)
    details = [json.loads(e.detail) for e in rows]
    assert [d["revoked_token"] for d in details] == [False, False, True, False]
    assert details[1]["error_code"] == "AccessDenied"
    # neither tokens nor signatures are stored anywhere in the trail
    with store.session() as s:
        dump = " ".join(str(e.model_dump()) for e in s.exec(select(AuditEvent)))
    assert CURRENT not in dump and REVOKED not in dump and "Signature" not in dump

    again = ingest_object(store, "logs/2025-02-06-00-00-38-ABCDEF", _log(), "s3")
    assert again.skipped_objects == 1 and again.events == 0
    assert len(_access(store)) == 4


def test_events_filter_by_client_and_time(store: Store) -> None:
    _store_with_tokens(store)
    ingest_object(store, "logs/a", _log(), "s3")
    record(store, "publish", client_key="globex", at=dt.datetime(2025, 2, 7, tzinfo=UTC))
    assert {e.client_key for e in events(store, client_key="globex")} == {"globex"}
    later = events(store, since=dt.datetime(2025, 2, 6, 12, tzinfo=UTC))
    assert [e.action for e in later if e.at < dt.datetime(2025, 2, 6, 12, tzinfo=UTC)] == []
    assert "publish" in [e.action for e in later]
    assert all(e.action != "log_ingested" for e in events(store))
    assert [e.action for e in events(store, include_markers=True)].count("log_ingested") == 1


@pytest.mark.s3
def test_ingest_reads_only_new_log_objects_from_the_bucket(store: Store, bucket: str, localstack: str) -> None:
    import boto3

    _store_with_tokens(store)
    s3 = boto3.client("s3", endpoint_url=localstack, region_name="us-east-1")
    cf = (CF_HEADER + cf_line(f"/portals/{CURRENT}/index.html") + "\n").encode()
    s3.put_object(Bucket=bucket, Key="cf/E2ABC.2025-02-06-10.aaaa.gz", Body=gzip.compress(cf))
    s3.put_object(Bucket=bucket, Key="elsewhere/E2ABC.2025-02-06-10.zzzz.gz", Body=gzip.compress(cf))
    first = ingest(store, s3, bucket, "cf/", "cloudfront")
    assert (first.log_objects, first.events) == (1, 1)
    s3.put_object(Bucket=bucket, Key="cf/E2ABC.2025-02-06-11.bbbb.gz",
                  Body=gzip.compress(cf + cf_line(f"/portals/{CURRENT}/report.pdf").encode() + b"\n"))
    second = ingest(store, s3, bucket, "cf/", "cloudfront")
    assert (second.log_objects, second.skipped_objects, second.events) == (1, 1, 2)
    assert [e.object_key for e in _access(store)] == ["index.html", "index.html", "report.pdf"]


def test_cli_audit_lists_json_and_filters(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    cfg = tmp_path / "bridge.toml"
    cfg.write_text(
        f'[store]\nurl = "sqlite:///{db}"\n[agency]\ntimezone = "Europe/Berlin"\n'
        '[[sources]]\nname = "h"\nkind = "harvest"\n'
        '[[clients]]\nkey = "acme"\nname = "Acme"\nsources = { h = ["1"] }\n'
        '[[clients]]\nkey = "globex"\nname = "Globex"\nsources = { h = ["2"] }\n'
    )
    store = Store(f"sqlite:///{db}")
    store.migrate()
    _store_with_tokens(store)
    ingest_object(store, "logs/a", _log(), "s3")
    record(store, "publish", client_key="globex", at=dt.datetime(2025, 2, 6, 23, 30, tzinfo=UTC))
    store.close()
    run = CliRunner().invoke
    out = run(cli, ["-c", str(cfg), "audit", "--json", "--client", "acme"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert {x["client"] for x in lines} == {"acme"}
    assert [x["link_valid"] for x in lines if x["action"] == "access"] == [True, False, False, True]
    # 2025-02-07 starts at 23:00 UTC the day before in Berlin
    out = run(cli, ["-c", str(cfg), "audit", "--since", "2025-02-07"])
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() and all("globex  publish" in x for x in out.stdout.splitlines())
    out = run(cli, ["-c", str(cfg), "audit", "--ingest"])
    assert out.exit_code == 1 and "[audit] log_bucket" in out.output
