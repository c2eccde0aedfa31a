#!/usr/bin/env bash
# Create .venv-s3emu with LocalStack's S3 pinned to the version measured in
# shared/reference/s3-servers.md (4.12.0 is the last that runs on Python 3.11).
# It lives in its own venv because its extras pin boto3 exactly.
# pyopenssl 25+ dropped X509.add_extensions, which its TLS self-certificate code calls;
# service-identity 25+ then needs a newer cryptography than that pyopenssl allows.
# Usage: bash .ci/localstack.sh   (idempotent; re-running only checks the import)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-s3emu
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import localstack.runtime.main" >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    'localstack-core[base-runtime]==4.12.0' 'cbor2<5.7' 'service-identity<25' 'pyopenssl==24.2.1'
fi
"$VENV/bin/python" -c "import localstack.runtime.main" && echo "localstack.sh: $VENV ready"
