#!/usr/bin/env bash
# Create .venv-s3emu with LocalStack's S3, pinned to the version measured in
# shared/reference/s3-servers.md (4.12.0 is the last that runs on Python 3.11). It lives in
# its own venv because its extras pin boto3 exactly. The S3 tests (tests/publishers/) and
# benchmarks/publish_bench.py start it from there on a free 127.0.0.1 port.
#
# Extra pins, found when installing: pyopenssl 25+ dropped X509.add_extensions, which
# LocalStack's self-signed certificate code calls at start-up; service-identity 25+ needs
# a newer cryptography than that pyopenssl allows; cbor2 5.7+ breaks its import.
#
# Usage: bash .ci/localstack.sh   (idempotent: a satisfied venv is left as it is)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-s3emu
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
PINS=('localstack-core[base-runtime]==4.12.0' 'cbor2<5.7' 'service-identity<25' 'pyopenssl==24.2.1')
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# pip leaves satisfied pins alone, so re-running also repairs a venv made with other pins
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}" 2>&1 \
  | grep -v "^WARNING: Location .* is ignored" || true
"$VENV/bin/python" -c "import localstack.runtime.main; from OpenSSL.crypto import X509; X509.add_extensions" \
  && echo "localstack.sh: $VENV ready"
