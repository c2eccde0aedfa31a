"""Publish portals to a private S3 bucket (or an S3-compatible store) behind signed links.

Keys are `<prefix>/<token>/<path>`. Nothing is ever public: no ACL is set (objects stay
private to the bucket owner), and `check()` refuses a bucket whose ACL or policy would let
anyone read or list the prefix. Readers get SigV4 presigned GET URLs (at most 7 days), or
CloudFront signed URLs when a distribution is configured.

Uploads are incremental and ordered (see publishers/manifest.py): changed exports, then
index.html, then stale objects deleted, then the manifest. Pages go up gzip-compressed
with `Content-Encoding: gzip`; every object is `Cache-Control: no-store, private`.

Credentials come from the standard AWS chain (environment, shared files, SSO, instance
role) and never from the config file.

Links are signed for a *window* (signed_at, expires_in) chosen by the caller through
`bind()`. Signing again inside the same window gives byte-identical URLs, so a republish
with unchanged data renders an identical index.html and uploads nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import fnmatch
import gzip
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
from botocore.auth import SIGV4_TIMESTAMP, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from bridge.config import PublishConfig
from bridge.errors import ConfigError, PublishError
from bridge.publisher import PublishResult, RenderedFile
from publishers import manifest as mf
from publishers.cloudfront import CloudFrontLinks

log = logging.getLogger(__name__)

MAX_PRESIGN_SECONDS = 604800  # SigV4 query signatures are valid for at most 7 days
CACHE_CONTROL = "no-store, private"
_PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
_READ_ACTIONS = ("s3:GetObject", "s3:ListBucket")


def parse_target(target: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix")."""
    parts = urlsplit(target)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(f"publish.target {target!r} is not an s3://bucket/prefix URL")
    return parts.netloc, parts.path.strip("/")


def content_disposition(name: str) -> str:
    """RFC 6266 attachment with an ASCII fallback and an RFC 5987 filename* for unicode."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name) or "download"
    if fallback == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@dataclass
class UploadStats:
    objects: int = 0
    bytes: int = 0
    deleted: int = 0


class _PinnedQueryAuth(S3SigV4QueryAuth):
    """botocore's S3 query signer with the signing time given rather than read from the clock,
    so the same window always yields the same URL."""

    def __init__(self, credentials: Any, region: str, expires: int, signed_at: dt.datetime) -> None:
        super().__init__(credentials, "s3", region, expires=expires)
        self._signed_at = signed_at

    def add_auth(self, request: AWSRequest) -> None:
        if self.credentials is None:
            raise NoCredentialsError()
        request.context["timestamp"] = self._signed_at.astimezone(dt.timezone.utc).strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        self._inject_signature_to_request(request, self.signature(self.string_to_sign(request, canonical), request))


class S3Publisher:
    scheme = "s3"
    signs_links = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        sse: str = "none",
        kms_key_id: str | None = None,
        retry_mode: str = "standard",
        max_attempts: int = 5,
        cloudfront: CloudFrontLinks | None = None,
        session: boto3.session.Session | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.cloudfront = cloudfront
        self.session = session or boto3.session.Session(region_name=region)
        config = BotoConfig(
            signature_version="s3v4",
            retries={"mode": retry_mode, "max_attempts": max_attempts},
            # S3-compatible stores rarely resolve virtual-hosted bucket names
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self.client = self.session.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)
        self.region = self.client.meta.region_name or "us-east-1"
        self.signed_at: dt.datetime | None = None
        self.expires_in = MAX_PRESIGN_SECONDS
        self.allow_ips: tuple[str, ...] = ()
        self.stats = UploadStats()

    @classmethod
    def from_config(cls, cfg: PublishConfig) -> "S3Publisher":
        bucket, prefix = parse_target(cfg.target)
        if cfg.sse == "aws:kms" and not cfg.kms_key_id:
            log.info("publish: SSE-KMS without kms_key_id uses the bucket's AWS-managed key")
        return cls(
            bucket,
            prefix,
            region=cfg.region,
            endpoint_url=cfg.endpoint_url,
            sse=cfg.sse,
            kms_key_id=cfg.kms_key_id,
            retry_mode=cfg.retry_mode,
            cloudfront=CloudFrontLinks.from_config(cfg),
        )

    # --- link windows ----------------------------------------------------------------
    def bind(self, *, signed_at: dt.datetime, expires_in: int, allow_ips: Sequence[str] = ()) -> "S3Publisher":
        """A view of this publisher that signs every link for one client's window."""
        if self.cloudfront is None:
            if expires_in > MAX_PRESIGN_SECONDS:
                raise ConfigError(
                    f"link_expiry of {expires_in} s is longer than S3 presigned URLs allow "
                    f"({MAX_PRESIGN_SECONDS} s = 7 days); shorten it or configure CloudFront signed URLs"
                )
            self._check_credential_lifetime(signed_at + dt.timedelta(seconds=expires_in))
        clone = copy.copy(self)
        clone.signed_at = signed_at.astimezone(dt.timezone.utc).replace(microsecond=0)
        clone.expires_in = int(expires_in)
        clone.allow_ips = tuple(allow_ips)
        return clone

    def restrict(self, client: Any, token: str) -> None:
        """Enforce a client's allow_ips on plain S3 links through the bucket policy.

        A presigned URL cannot carry an IP condition (a CloudFront signed URL does, so
        with CloudFront there is nothing to do here).
        """
        if self.cloudfront is not None or not client.allow_ips:
            return
        from bridge.ip_policy import restrict_client

        try:
            restrict_client(self.client, self.bucket, self.prefix, client, token)
        except ClientError as exc:
            raise PublishError(
                f"cannot put the IP allow-list for client {client.key!r} into the policy of bucket "
                f"{self.bucket!r} ({_code(exc)}); the bridge's credentials need s3:PutBucketPolicy"
            ) from None

    @property
    def expires_at(self) -> dt.datetime | None:
        if self.signed_at is None:
            return None
        return self.signed_at + dt.timedelta(seconds=self.expires_in)

    def _check_credential_lifetime(self, expires_at: dt.datetime) -> None:
        """A presigned URL dies with the credentials that signed it."""
        creds = self.session.get_credentials()
        if creds is None:
            raise ConfigError("no AWS credentials found in the standard chain (environment, ~/.aws, SSO, instance role)")
        cred_expiry = getattr(creds, "_expiry_time", None)
        if cred_expiry is not None:
            if cred_expiry.tzinfo is None:
                cred_expiry = cred_expiry.replace(tzinfo=dt.timezone.utc)
            if expires_at > cred_expiry:
                raise ConfigError(
                    f"the temporary AWS credentials expire at {cred_expiry:%Y-%m-%d %H:%M} UTC, before the links "
                    f"would ({expires_at:%Y-%m-%d %H:%M} UTC), and a presigned link dies with its credentials; "
                    "sign with long-term credentials, shorten link_expiry, or use CloudFront signed URLs"
                )
        elif creds.get_frozen_credentials().token:
            log.warning("publish: signing with temporary AWS credentials of unknown lifetime; links may die early")

    # --- the Publisher port ------------------------------------------------------------
    def link(self, token: str, path: str) -> str:
        mf.check_path(path)
        key = self._key(token, path)
        signed_at = self.signed_at or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        expires_at = signed_at + dt.timedelta(seconds=self.expires_in)
        if self.cloudfront is not None:
            return self.cloudfront.sign(key, self._folder(token), expires_at, self.allow_ips)
        return self._presign(key, signed_at, self.expires_in)

    def portal_url(self, token: str) -> str:
        return self.link(token, mf.INDEX)

    def check(self) -> None:
        """Refuse a bucket that would make portals public; see module docstring."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            raise PublishError(f"S3 bucket {self.bucket!r} is not reachable: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise PublishError(f"S3 bucket {self.bucket!r} is not reachable: {exc.__class__.__name__}") from None
        block = self._public_access_block()
        if not block.get("IgnorePublicAcls"):
            try:
                acl = self.client.get_bucket_acl(Bucket=self.bucket)
            except ClientError as exc:
                # fail closed: an ACL we cannot read might be public
                raise PublishError(
                    f"cannot read the ACL of S3 bucket {self.bucket!r} ({_code(exc)}) to check it is not public; "
                    "allow s3:GetBucketAcl or turn on Block Public Access (IgnorePublicAcls)"
                ) from None
            public = [g for g in acl.get("Grants", []) if g.get("Grantee", {}).get("URI") in _PUBLIC_GRANTEES]
            if public:
                raise PublishError(
                    f"refusing to publish to S3 bucket {self.bucket!r}: its ACL grants "
                    f"{public[0]['Permission']} to {public[0]['Grantee']['URI'].rsplit('/', 1)[-1]}, which would expose "
                    "portal tokens or files; remove the grant or turn on Block Public Access"
                )
        if not block.get("RestrictPublicBuckets"):
            why = public_policy_reason(self._policy(), self.bucket, self.prefix)
            if why is None and self._aws_says_public():
                why = "is public by AWS's own evaluation (GetBucketPolicyStatus)"
            if why:
                raise PublishError(
                    f"refusing to publish to S3 bucket {self.bucket!r}: its bucket policy {why}; "
                    "portals must only be reachable through signed links"
                )

    def publish(self, token: str, files: Sequence[RenderedFile]) -> PublishResult:
        mf.check_token(token)
        folder = self._folder(token)
        local = mf.hash_tree(files)
        by_path = mf.by_path(files)
        try:
            present = self._list(folder)
            written = mf.decode_manifest(self._get(f"{folder}/{mf.MANIFEST}")) if mf.MANIFEST in present else {}
            # trust the manifest only for objects that are really there
            remote = {p: h for p, h in written.items() if p in present}
            todo = mf.plan(local, remote)
            strays = sorted(p for p in present if p not in local and p not in remote and p != mf.MANIFEST)
            for path in todo.uploads:
                self._upload(self._key(token, path), by_path[path], local[path])
            deletes = sorted(set(todo.deletes) | set(strays))
            self._delete([self._key(token, p) for p in deletes])
            if not (todo.is_noop and not strays and written == local):
                self._put(f"{folder}/{mf.MANIFEST}", mf.encode_manifest(local), ContentType="application/json",
                          CacheControl=CACHE_CONTROL)
        except ClientError as exc:
            raise PublishError(f"S3 publish to bucket {self.bucket!r} failed: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise PublishError(f"S3 publish to bucket {self.bucket!r} failed: {exc.__class__.__name__}") from None
        return PublishResult(
            token=token,
            url=self.portal_url(token),
            expires_at=self.expires_at,
            uploaded=todo.uploads,
            deleted=deletes,
            unchanged=todo.unchanged,
        )

    def remove(self, token: str) -> int:
        mf.check_token(token)
        folder = self._folder(token)
        try:
            keys = [f"{folder}/{p}" for p in sorted(self._list(folder))]
            self._delete(keys)
        except ClientError as exc:
            raise PublishError(f"S3 delete in bucket {self.bucket!r} failed: {_code(exc)}") from None
        return len(keys)

    def portals(self) -> dict[str, int]:
        """Every portal folder under the prefix (token -> object count): one listing, no reads."""
        base = f"{self.prefix}/" if self.prefix else ""
        out: dict[str, int] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                for obj in page.get("Contents", []):
                    token, sep, _ = obj["Key"][len(base):].partition("/")
                    if sep and mf.is_token(token):
                        out[token] = out.get(token, 0) + 1
        except ClientError as exc:
            raise PublishError(f"S3 listing of bucket {self.bucket!r} failed: {_code(exc)}") from None
        return out

    # --- S3 calls ------------------------------------------------------------------------
    def _folder(self, token: str) -> str:
        return f"{self.prefix}/{token}" if self.prefix else token

    def _key(self, token: str, path: str) -> str:
        return f"{self._folder(token)}/{path}"

    def _presign(self, key: str, signed_at: dt.datetime, expires_in: int) -> str:
        # let botocore resolve the endpoint and addressing style, then sign for our window
        raw = self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=60)
        parts = urlsplit(raw)
        request = AWSRequest(method="GET", url=urlunsplit(parts._replace(query="", fragment="")))
        creds = self.session.get_credentials()
        if creds is None:
            raise ConfigError("no AWS credentials found in the standard chain to sign links with")
        _PinnedQueryAuth(creds.get_frozen_credentials(), self.region, expires_in, signed_at).add_auth(request)
        return request.prepare().url

    def _list(self, folder: str) -> set[str]:
        out: set[str] = set()
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder + "/")
        for page in pages:
            for obj in page.get("Contents", []):
                out.add(obj["Key"][len(folder) + 1 :])
        return out

    def _get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise

    def _upload(self, key: str, f: RenderedFile, digest: str) -> None:
        body, encoding = f.data, f.content_encoding
        if encoding is None and f.content_type.startswith("text/html"):
            # pages compress ~5x; mtime=0 keeps the bytes identical across runs
            body, encoding = gzip.compress(f.data, mtime=0), "gzip"
        extra: dict[str, Any] = {"ContentType": f.content_type, "CacheControl": CACHE_CONTROL,
                                 "Metadata": {"sha256": digest}}
        if encoding:
            extra["ContentEncoding"] = encoding
        if f.download_name:
            extra["ContentDisposition"] = content_disposition(f.download_name)
        self._put(key, body, **extra)

    def _put(self, key: str, body: bytes, **extra: Any) -> None:
        if self.sse != "none":
            extra["ServerSideEncryption"] = self.sse
            if self.sse == "aws:kms" and self.kms_key_id:
                extra["SSEKMSKeyId"] = self.kms_key_id
        # no ACL argument, ever: objects stay private to the bucket owner
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        self.stats.objects += 1
        self.stats.bytes += len(body)

    def _delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            resp = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
            if resp.get("Errors"):
                err = resp["Errors"][0]
                raise PublishError(f"S3 delete in bucket {self.bucket!r} failed: {err.get('Code')}")
            self.stats.deleted += len(batch)

    def _public_access_block(self) -> dict[str, bool]:
        try:
            return self.client.get_public_access_block(Bucket=self.bucket)["PublicAccessBlockConfiguration"]
        except ClientError as exc:
            if _code(exc) in ("NoSuchPublicAccessBlockConfiguration", "NotImplemented", "404"):
                return {}
            raise PublishError(f"cannot read Block Public Access of S3 bucket {self.bucket!r}: {_code(exc)}") from None

    def _aws_says_public(self) -> bool:
        """AWS's verdict, which also weighs conditions; S3-compatible stores may not offer it."""
        try:
            return bool(self.client.get_bucket_policy_status(Bucket=self.bucket)["PolicyStatus"]["IsPublic"])
        except (ClientError, KeyError):
            return False

    def _policy(self) -> dict[str, Any] | None:
        try:
            text = self.client.get_bucket_policy(Bucket=self.bucket)["Policy"]
        except ClientError as exc:
            if _code(exc) in ("NoSuchBucketPolicy", "404"):
                return None
            raise PublishError(f"cannot read the policy of S3 bucket {self.bucket!r}: {_code(exc)}") from None
        try:
            return json.loads(text)
        except ValueError:
            raise PublishError(f"the policy of S3 bucket {self.bucket!r} is not valid JSON") from None


def public_policy_reason(policy: dict[str, Any] | None, bucket: str, prefix: str) -> str | None:
    """Why a bucket policy would let anyone read portal objects or list tokens (None: it doesn't).

    Conservative: an Allow to everyone ("*"), or any NotPrincipal/NotAction/NotResource
    Allow, counts as public if its resources cover the prefix or the bucket listing, with
    a Condition or without: a Referer is sent by anyone who types it, "0.0.0.0/0" is every
    address, and no condition turns "everyone" into a named reader.
    """
    if not policy:
        return None
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    probe_obj = f"arn:aws:s3:::{bucket}/{prefix + '/' if prefix else ''}TOKEN/index.html"
    probe_bucket = f"arn:aws:s3:::{bucket}"
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in st:
            return "allows every principal except a few (NotPrincipal)"
        if not _is_everyone(st.get("Principal")):
            continue
        actions = _as_list(st.get("Action")) if "NotAction" not in st else ["*"]
        resources = _as_list(st.get("Resource")) if "NotResource" not in st else ["*"]
        cond = st.get("Condition")
        why = f" (its Condition on {', '.join(_condition_keys(cond))} does not make it private)" if cond else ""
        if _matches(actions, "s3:GetObject") and _matches(resources, probe_obj):
            return f"lets anyone read objects under '{prefix or '/'}'{why}; grant a named principal instead"
        if _matches(actions, "s3:ListBucket") and _matches(resources, probe_bucket):
            return f"lets anyone list the bucket, which reveals portal tokens{why}"
    return None


def _condition_keys(cond: Any) -> list[str]:
    if not isinstance(cond, dict):
        return ["?"]
    keys = sorted({k for ops in cond.values() if isinstance(ops, dict) for k in ops})
    return keys or sorted(cond)


def _is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in _as_list(principal.get("AWS"))
    return False


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _matches(patterns: list[str], value: str) -> bool:
    # IAM wildcards are * and ?; escape '[' so fnmatch does not read it as a character class
    return any(fnmatch.fnmatchcase(value.lower(), p.lower().replace("[", "[[]")) for p in patterns)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))
