"""docs/iam-policy.json against the S3 calls the bridge really makes (LocalStack).

Every S3 API call of a publish, a republish, a revoke, the portal listing and a
retirement, `bridge policy --apply` (put, then delete) and `bridge audit --ingest` is
recorded; each must be allowed by the documented policy, and each action the policy grants
must have been needed by some call (least privilege). The action for each operation is
AWS's documented mapping, written out here by hand.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.client import BaseClient

from bridge import publishing
from bridge.audit import ingest
from bridge.ip_policy import apply_policy, bucket_policy, current_tokens
from bridge.offboarding import list_portals, retire_orphans
from publishers.s3 import S3Publisher
from tests.publishers.conftest import fake_render, make_config, no_leaks, views

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "s3-cloudfront.md"
POLICY = ROOT / "docs" / "iam-policy.json"

# S3 operation -> IAM action (docs.aws.amazon.com, "Actions, resources, and condition keys for Amazon S3")
ACTION = {
    "HeadBucket": "s3:ListBucket", "ListObjectsV2": "s3:ListBucket", "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject", "DeleteObjects": "s3:DeleteObject", "DeleteObject": "s3:DeleteObject",
    "GetBucketAcl": "s3:GetBucketAcl", "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus", "GetBucketPolicy": "s3:GetBucketPolicy",
    "PutBucketPolicy": "s3:PutBucketPolicy", "DeleteBucketPolicy": "s3:DeleteBucketPolicy",
}


def _resources(op: str, params: dict[str, Any]) -> list[str]:
    bucket = params["Bucket"]
    if op == "DeleteObjects":
        return [f"arn:aws:s3:::{bucket}/{o['Key']}" for o in params["Delete"]["Objects"]]
    if "Key" in params:
        return [f"arn:aws:s3:::{bucket}/{params['Key']}"]
    return [f"arn:aws:s3:::{bucket}"]


def _allowed(policy: dict[str, Any], action: str, resource: str) -> str | None:
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if st["Effect"] == "Allow" and action in actions and any(fnmatch.fnmatchcase(resource, r) for r in resources):
            return st["Sid"]
    return None


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "s3":
            calls.append((operation_name, dict(api_params)))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    return calls


@pytest.mark.s3
def test_the_documented_policy_allows_every_call_and_nothing_unused(store, localstack: str, bucket: str,
                                                                    recorded: list) -> None:
    s3 = boto3.client("s3", endpoint_url=localstack, region_name="us-east-1")
    logs = bucket + "-logs"
    s3.create_bucket(Bucket=logs)
    s3.put_object(Bucket=logs, Key="access/2025-03-20-12-00-00-ABC", Body=b"")
    recorded.clear()  # the set-up above is the administrator's, not the bridge's

    config = make_config(f"s3://{bucket}/portals", clients=2, endpoint_url=localstack, region="us-east-1")
    target = S3Publisher.from_config(config.publish)
    publishing.publish_all(store, config, target, fake_render, build_view=views(), guard=no_leaks)
    publishing.publish_all(store, config, target, fake_render, build_view=views(), guard=no_leaks)  # unchanged
    res = publishing.revoke(store, config, "acme", target, fake_render, build_view=views(), guard=no_leaks)
    assert httpx.get(res.url).status_code == 200
    config.clients[0].allow_ips = ["203.0.113.0/24"]
    assert apply_policy(s3, bucket, bucket_policy(config, bucket, "portals", current_tokens(store)))
    config.clients[0].allow_ips = []
    assert apply_policy(s3, bucket, bucket_policy(config, bucket, "portals", current_tokens(store)))  # removed again
    remaining = make_config(f"s3://{bucket}/portals", clients=1, endpoint_url=localstack, region="us-east-1")
    assert [e.state for e in list_portals(store, remaining, target)] == ["live", "orphan"]
    assert len(retire_orphans(store, remaining, target)) == 1
    ingest(store, s3, logs, "access/", "s3")

    policy = json.loads(POLICY.read_text().replace("LOG_BUCKET", logs).replace("LOG_PREFIX", "access/")
                        .replace("BUCKET", bucket).replace("PREFIX", "portals"))
    used: set[tuple[str, str]] = set()
    for op, params in recorded:
        assert op in ACTION, f"the bridge calls S3 {op}: add its IAM action to the table and the policy"
        for resource in _resources(op, params):
            sid = _allowed(policy, ACTION[op], resource)
            assert sid, f"{op} on {resource} ({ACTION[op]}) is not allowed by docs/iam-policy.json"
            used.add((sid, ACTION[op]))
    granted = {(st["Sid"], a) for st in policy["Statement"] for a in st["Action"]}
    assert granted - used == set(), "the policy grants actions the bridge never needs"


def test_the_guide_shows_the_tested_policy() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    block = guide.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == json.loads(POLICY.read_text())
