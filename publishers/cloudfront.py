"""CloudFront signed URLs with a custom policy: any expiry, a wildcard over one client's
folder, and optionally one source-IP range.

S3 presigned URLs last at most 7 days; a CloudFront distribution in front of the private
bucket (origin access control) can serve links that last longer. The policy's Resource is
`https://<domain>/<prefix>/<token>/*`, so one signature never opens another client's
folder. The RSA private key comes from a PEM file or an environment variable, never from
the config file itself.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.config import PublishConfig
from bridge.errors import ConfigError


def load_private_key(cfg: PublishConfig) -> rsa.RSAPrivateKey:
    """The key from `cloudfront_private_key_file` or the env var named by `..._env`."""
    if cfg.cloudfront_private_key_env:
        pem = os.environ.get(cfg.cloudfront_private_key_env, "")
        if not pem:
            raise ConfigError(
                f"publish.cloudfront_private_key_env: environment variable "
                f"{cfg.cloudfront_private_key_env} is not set or empty"
            )
        data, origin = pem.encode(), f"environment variable {cfg.cloudfront_private_key_env}"
    elif cfg.cloudfront_private_key_file:
        path = Path(cfg.cloudfront_private_key_file).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"publish.cloudfront_private_key_file: cannot read {path}: {exc.strerror}") from None
        origin = str(path)
    else:
        raise ConfigError(
            "publish.cloudfront_domain is set but no private key is: set "
            "cloudfront_private_key_file or cloudfront_private_key_env"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"the CloudFront private key from {origin} is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"the CloudFront private key from {origin} is not an RSA key")
    return key


def source_ip(allow_ips: Sequence[str]) -> str | None:
    """CloudFront custom policies take one IP condition; a bare address gets /32 (or /128)."""
    if not allow_ips:
        return None
    if len(allow_ips) > 1:
        raise ConfigError(
            f"allow_ips lists {len(allow_ips)} ranges but a CloudFront signed URL can carry only one; "
            "use a single CIDR that covers them"
        )
    try:
        return str(ipaddress.ip_network(allow_ips[0], strict=False))
    except ValueError:
        raise ConfigError(f"allow_ips: {allow_ips[0]!r} is not an IP address or CIDR range") from None


class CloudFrontLinks:
    """Signs URLs under https://<domain>/ with one key pair (or key group public key id)."""

    def __init__(self, domain: str, key_pair_id: str, private_key: rsa.RSAPrivateKey) -> None:
        self.base = "https://" + domain.removeprefix("https://").rstrip("/")
        self._key = private_key
        self._signer = CloudFrontSigner(key_pair_id, self._rsa_sign)

    @classmethod
    def from_config(cls, cfg: PublishConfig) -> "CloudFrontLinks | None":
        if not cfg.cloudfront_domain:
            return None
        if not cfg.cloudfront_key_pair_id:
            raise ConfigError("publish.cloudfront_domain is set but cloudfront_key_pair_id is not")
        return cls(cfg.cloudfront_domain, cfg.cloudfront_key_pair_id, load_private_key(cfg))

    def _rsa_sign(self, message: bytes) -> bytes:
        # CloudFront verifies RSA PKCS#1 v1.5 over SHA-1: its format, not our choice
        return self._key.sign(message, padding.PKCS1v15(), hashes.SHA1())

    def url(self, key: str) -> str:
        return f"{self.base}/{quote(key)}"

    def sign(self, key: str, folder: str, expires_at: dt.datetime, allow_ips: Sequence[str] = ()) -> str:
        """Signed URL for object `key`; the policy covers every object under `folder`/."""
        resource = f"{self.base}/{quote(folder.strip('/'))}/*"
        policy = self._signer.build_policy(resource, expires_at, ip_address=source_ip(allow_ips))
        return self._signer.generate_presigned_url(self.url(key), policy=policy)
