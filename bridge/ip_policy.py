"""Source-IP allow-lists for portals served straight from S3: one bucket-policy Deny per client.

A presigned S3 URL cannot carry an IP condition, but the bucket policy can refuse it: for
each client with `allow_ips`, a statement denies s3:GetObject on that client's folder
(`<prefix>/<token>/*`, nothing wider) to requests from outside the listed ranges.

The Deny applies only to requests *not* signed in the Authorization header
(`s3:authType` other than REST-HEADER), i.e. presigned links and anonymous requests. The
bridge's own SDK calls (reading its manifest), admin tools and CloudFront's origin-access
fetches sign in the header and stay unaffected; CloudFront links carry their own IP
condition (publishers/cloudfront.py), since behind CloudFront the source IP S3 sees is
CloudFront's.

Statements are named "ClearhoursIp" + the client key (Sids allow only letters and digits,
so '-' becomes 'H' and '_' becomes 'U'; keys are lower case, so this is one-to-one).
`merge_policy` replaces every statement of ours and keeps everything else in the policy.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bridge.config import ClientConfig, Config
from bridge.errors import ConfigError
from bridge.store import Store

SID_PREFIX = "ClearhoursIp"
VERSION = "2012-10-17"


def validate_cidrs(values: Sequence[str], where: str = "allow_ips") -> list[str]:
    """Canonical CIDRs; a bare address becomes /32 (or /128). Host bits set is an error,
    because '10.1.2.3/24' may mean the host or the network and we will not guess."""
    out = []
    for v in values:
        try:
            net = ipaddress.ip_network(v.strip(), strict=True)
        except ValueError:
            try:
                wide = ipaddress.ip_network(v.strip(), strict=False)
            except ValueError:
                raise ConfigError(f"{where}: {v!r} is not an IP address or CIDR range") from None
            raise ConfigError(f"{where}: {v!r} has host bits set; did you mean {wide}?") from None
        if net.prefixlen == 0:
            raise ConfigError(f"{where}: {v!r} allows every address; remove allow_ips instead")
        out.append(str(net))
    return sorted(set(out), key=lambda c: (ipaddress.ip_network(c).version, ipaddress.ip_network(c)))


def sid_for(client_key: str) -> str:
    return SID_PREFIX + client_key.replace("-", "H").replace("_", "U")


def folder_arn(bucket: str, prefix: str, token: str) -> str:
    path = "/".join(p for p in (prefix.strip("/"), token) if p)
    return f"arn:aws:s3:::{bucket}/{path}/*"


def client_statement(client: ClientConfig, bucket: str, prefix: str, token: str) -> dict[str, Any]:
    if not token or "/" in token or "*" in token or "?" in token:
        raise ConfigError(f"client {client.key!r}: its token is not a plain folder name")
    cidrs = validate_cidrs(client.allow_ips, f"clients {client.key!r}: allow_ips")
    return {
        "Sid": sid_for(client.key),
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": folder_arn(bucket, prefix, token),
        "Condition": {
            "NotIpAddress": {"aws:SourceIp": cidrs},
            "StringNotEquals": {"s3:authType": "REST-HEADER"},
        },
    }


def bucket_policy(config: Config, bucket: str, prefix: str, tokens: Mapping[str, str]) -> dict[str, Any]:
    """Our statements only: one per client with allow_ips and a token (client key -> token)."""
    statements = [client_statement(c, bucket, prefix, tokens[c.key])
                  for c in config.clients if c.allow_ips and tokens.get(c.key)]
    return {"Version": VERSION, "Statement": statements}


def is_ours(statement: Mapping[str, Any]) -> bool:
    return str(statement.get("Sid", "")).startswith(SID_PREFIX)


def merge_policy(existing: Mapping[str, Any] | None, ours: Mapping[str, Any]) -> dict[str, Any] | None:
    """`existing` with our old statements replaced by `ours`; None when nothing is left."""
    kept = [s for s in _statements(existing) if not is_ours(s)]
    merged = kept + list(ours.get("Statement", []))
    if not merged:
        return None
    doc: dict[str, Any] = {"Version": (existing or {}).get("Version", VERSION)}
    if existing and "Id" in existing:
        doc["Id"] = existing["Id"]
    doc["Statement"] = merged
    return doc


def restrict_client(s3: "PolicyClient", bucket: str, prefix: str, client: ClientConfig, token: str) -> None:
    """Put one client's statement (for its current token) into the bucket policy.

    Publishing calls this before it uploads under a new token, so a first publish or a
    revoke is never unrestricted until someone runs `bridge policy --apply`. Every other
    statement, ours for other clients included, is kept.
    """
    mine = client_statement(client, bucket, prefix, token)
    try:
        raw = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        existing = json.loads(raw) if isinstance(raw, str) else raw
    except Exception as exc:  # noqa: BLE001 - botocore's NoSuchBucketPolicy has no import-free class
        if "NoSuchBucketPolicy" not in str(exc) and "NoSuchBucketPolicy" not in type(exc).__name__:
            raise
        existing = None
    kept = [st for st in _statements(existing) if st.get("Sid") != mine["Sid"]]
    doc: dict[str, Any] = {"Version": (existing or {}).get("Version", VERSION)}
    if existing and "Id" in existing:
        doc["Id"] = existing["Id"]
    doc["Statement"] = kept + [mine]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc))


def _statements(doc: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not doc:
        return []
    st = doc.get("Statement", [])
    return [st] if isinstance(st, dict) else list(st)


class PolicyClient(Protocol):
    """The slice of a boto3 S3 client that applying a policy uses."""

    def get_bucket_policy(self, **kwargs: Any) -> Any: ...
    def put_bucket_policy(self, **kwargs: Any) -> Any: ...
    def delete_bucket_policy(self, **kwargs: Any) -> Any: ...


def current_policy(client: PolicyClient, bucket: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucketPolicy":
            return None
        raise


def apply_policy(client: PolicyClient, bucket: str, ours: Mapping[str, Any]) -> bool:
    """Merge our statements into the bucket's policy; True when the policy changed."""
    existing = current_policy(client, bucket)
    merged = merge_policy(existing, ours)
    if merged == existing or (merged is None and existing is None):
        return False
    if merged is None:
        client.delete_bucket_policy(Bucket=bucket)
    else:
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(merged))
    return True


def current_tokens(store: Store) -> dict[str, str]:
    """Client key -> its current token, from the store's PortalLink rows."""
    from sqlmodel import select

    from bridge.models import PortalLink

    with store.session() as s:
        return {row.client_key: row.token for row in s.exec(select(PortalLink))}
